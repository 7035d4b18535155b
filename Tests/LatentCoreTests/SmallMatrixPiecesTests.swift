import LatentCore
import XCTest

/// `SmallMatrixPieces`: the pieces keep within OpenBLAS's small-matrix bounds and never take the NN kernel's
/// mallocing remainder (`GEMMTests` checks `Float.gemm` in pieces against the naive loop).
final class SmallMatrixPiecesTests: XCTestCase {
    /// The widths of the pieces of `columns` columns, as `Float.gemm` issues them.
    func pieces(of columns: Int, width: Int) -> [Int] {
        stride(from: 0, to: columns, by: width).map { min(width, columns - $0) }
    }

    func testEveryPieceFitsTheSmallKernelBounds() {
        var split = 0
        for (transA, transB) in [(Transpose.none, Transpose.transpose), (.transpose, .none), (.none, .none),
                                 (.transpose, .transpose)] {
            for rows in 1...140 {
                for inner in [1, 10, 20, 31, 32, 33, 64, 100, 128, 129, 300, 784] {
                    for columns in stride(from: 1, through: 800, by: 7) {
                        let width = SmallMatrixPieces.width(transA, transB, rows: rows, columns: columns,
                                                            inner: inner)
                        let what = "\(transA)×\(transB) \(rows)×\(columns)×\(inner): width \(width)"
                        guard width < columns else {
                            XCTAssertEqual(width, columns, what)
                            continue
                        }
                        split += 1
                        XCTAssertEqual(width % 16, 0, what)
                        XCTAssertGreaterThan(rows * columns * inner, SmallMatrixPieces.productLimit,
                                             "\(what): a GEMM already within the bounds is not split")
                        for piece in pieces(of: columns, width: width) {
                            XCTAssertLessThanOrEqual(rows * piece * inner, SmallMatrixPieces.productLimit, what)
                            switch (transA, transB) {
                            case (.none, .transpose):
                                XCTAssertLessThanOrEqual(rows * piece, SmallMatrixPieces.transposedOutputLimit, what)
                                XCTAssertGreaterThanOrEqual(inner, 32, what)
                            case (.none, .none):
                                XCTAssertFalse((1...8).contains(piece % 16), "\(what): a piece of \(piece) mallocs")
                            case (.transpose, .none):
                                XCTAssertLessThanOrEqual(inner, 128, "\(what): over more rows, packing pays")
                            case (.transpose, .transpose):
                                XCTFail("\(what): OpenBLAS has no small TT kernel")
                            }
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(split, 1000, "the grid holds shapes that are split")
    }

    /// The training step's shapes at batch 32 (2 workers' column blocks, weight-gradient blocks of the update).
    func testStepShapesAtBatch32() {
        XCTAssertEqual(SmallMatrixPieces.width(.none, .transpose, rows: 32, columns: 152, inner: 784), 32,
                       "y = x Wᵀ: 32 × 32 is the TN kernel's largest output at 32 rows")
        XCTAssertEqual(SmallMatrixPieces.width(.none, .transpose, rows: 100, columns: 152, inner: 784), 152,
                       "at 100 rows no piece of 16 columns or more fits the TN bound")
        XCTAssertEqual(SmallMatrixPieces.width(.none, .transpose, rows: 32, columns: 300, inner: 10), 300,
                       "K < 32: the TN kernel is not permitted")
        XCTAssertEqual(SmallMatrixPieces.width(.transpose, .none, rows: 83, columns: 784, inner: 32), 272,
                       "dW: three even pieces of 83 × 272 × 32 ≤ 10⁶")
        XCTAssertEqual(SmallMatrixPieces.width(.transpose, .none, rows: 83, columns: 784, inner: 256), 784,
                       "dW over 256 rows: the packed kernel is faster")
        XCTAssertEqual(SmallMatrixPieces.width(.none, .none, rows: 32, columns: 156, inner: 300), 64)
        XCTAssertEqual(SmallMatrixPieces.width(.none, .none, rows: 32, columns: 152, inner: 300), 152,
                       "152 leaves 8 over 144: the NN kernel would malloc for the last piece")
    }

    /// NN GEMMs whose width leaves 1–8 columns over a multiple of 16 on the small-matrix path (K ≥ 32,
    /// M·N·K ≤ 10⁶) get calls that do not allocate; the others stay one call.
    func testMallocFreeNNPlans() {
        func plan(_ rows: Int, _ columns: Int, _ inner: Int, betaIsZero: Bool = true) -> MallocFreeNN? {
            SmallMatrixPieces.mallocFreeNN(rows: rows, columns: columns, inner: inner, betaIsZero: betaIsZero)
        }
        XCTAssertEqual(plan(100, 20, 300), .overlapping(aligned: 16), "dz for k = 20")
        XCTAssertEqual(plan(50, 50, 300), .overlapping(aligned: 48), "dz for k = 50 on a block of 50 rows")
        XCTAssertEqual(plan(100, 20, 300, betaIsZero: false), .innerBlocks(aligned: 16),
                       "with β ≠ 0 no column may be computed twice")
        XCTAssertEqual(plan(100, 5, 300), .innerBlocks(aligned: 0), "narrower than 16: no overlap possible")
        XCTAssertNil(plan(100, 10, 300), "10 columns take the kernel's masked path")
        XCTAssertNil(plan(100, 32, 300), "a multiple of 16")
        XCTAssertNil(plan(100, 20, 31), "K < 32 takes the masked path")
        XCTAssertNil(plan(100, 50, 300), "100 · 50 · 300 > 10⁶: OpenBLAS packs, and packing allocates nothing")
    }
}

