internal import CLinearAlgebra
import Synchronization

// The only file that calls `cblas_*`. Every call is row-major.

@inline(__always) private func cblasTranspose(_ t: Transpose) -> CBLAS_TRANSPOSE {
    t == .none ? CblasNoTrans : CblasTrans
}

@inline(__always) private func cblasTriangle(_ t: Triangle) -> CBLAS_UPLO {
    t == .lower ? CblasLower : CblasUpper
}

extension Float: BLASScalar {
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, rows: Int, columns: Int, inner: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if SmallMatrixPieces.hasSmallKernels, transA == .none, transB == .none,
           let plan = SmallMatrixPieces.mallocFreeNN(rows: rows, columns: columns, inner: inner, betaIsZero: beta == 0) {
            return gemm(rows: rows, columns: columns, inner: inner, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: c, ldc: ldc, mallocFree: plan)
        }
        // Each piece is within the small-matrix bounds, so its own call below is a single cblas_sgemm.
        let width = SmallMatrixPieces.applies
            ? SmallMatrixPieces.width(transA, transB, rows: rows, columns: columns, inner: inner) : columns
        guard width >= columns else {
            return gemm(transA, transB, rows: rows, columns: columns, inner: inner, alpha: alpha, a: a, lda: lda,
                        b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, pieceWidth: width)
        }
        cblas_sgemm(
            CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB), Int32(rows), Int32(columns),
            Int32(inner), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public static func trsm(
        side: Side, triangle: Triangle, transpose: Transpose, unitDiagonal: Bool, rows: Int, columns: Int,
        alpha: Float, triangular: UnsafePointer<Float>, ldt: Int, b: UnsafeMutablePointer<Float>, ldb: Int
    ) {
        cblas_strsm(
            CblasRowMajor, side == .left ? CblasLeft : CblasRight, cblasTriangle(triangle),
            cblasTranspose(transpose), unitDiagonal ? CblasUnit : CblasNonUnit, Int32(rows), Int32(columns),
            alpha, triangular, Int32(ldt), b, Int32(ldb))
    }

    public static func trsv(
        triangle: Triangle, transpose: Transpose, order: Int,
        triangular: UnsafePointer<Float>, ldt: Int, x: UnsafeMutablePointer<Float>, increment: Int
    ) {
        cblas_strsv(
            CblasRowMajor, cblasTriangle(triangle), cblasTranspose(transpose), CblasNonUnit, Int32(order),
            triangular, Int32(ldt), x, Int32(increment))
    }
}

extension Double: BLASScalar {
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, rows: Int, columns: Int, inner: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(
            CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB), Int32(rows), Int32(columns),
            Int32(inner), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public static func trsm(
        side: Side, triangle: Triangle, transpose: Transpose, unitDiagonal: Bool, rows: Int, columns: Int,
        alpha: Double, triangular: UnsafePointer<Double>, ldt: Int, b: UnsafeMutablePointer<Double>, ldb: Int
    ) {
        cblas_dtrsm(
            CblasRowMajor, side == .left ? CblasLeft : CblasRight, cblasTriangle(triangle),
            cblasTranspose(transpose), unitDiagonal ? CblasUnit : CblasNonUnit, Int32(rows), Int32(columns),
            alpha, triangular, Int32(ldt), b, Int32(ldb))
    }

    public static func trsv(
        triangle: Triangle, transpose: Transpose, order: Int,
        triangular: UnsafePointer<Double>, ldt: Int, x: UnsafeMutablePointer<Double>, increment: Int
    ) {
        cblas_dtrsv(
            CblasRowMajor, cblasTriangle(triangle), cblasTranspose(transpose), CblasNonUnit, Int32(order),
            triangular, Int32(ldt), x, Int32(increment))
    }
}

extension BLASScalar {
    /// `gemm` as one GEMM per block of `width` columns of C (the last block takes the rest): the same product, each
    /// block computed by the kernel OpenBLAS picks for its shape (`SmallMatrixPieces`).
    @inlinable
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, rows: Int, columns: Int, inner: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int, pieceWidth width: Int
    ) {
        precondition(width > 0, "a piece has at least one column")
        var first = 0
        while first < columns {
            let count = Swift.min(width, columns - first)
            // Columns of C are rows of B when B is transposed, else its columns.
            gemm(transA, transB, rows: rows, columns: count, inner: inner, alpha: alpha, a: a, lda: lda,
                 b: b + (transB == .transpose ? first * ldb : first), ldb: ldb, beta: beta, c: c + first, ldc: ldc)
            first += count
        }
    }

    /// The NN GEMM C = α A B + β C in the calls `plan` names (`SmallMatrixPieces.mallocFreeNN`): the same product,
    /// without the calls on which OpenBLAS's small-matrix NN kernel allocates.
    @inlinable
    package static func gemm(
        rows: Int, columns: Int, inner: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>,
        ldb: Int, beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int, mallocFree plan: MallocFreeNN
    ) {
        func product(columns range: Range<Int>, inner terms: Range<Int>, beta: Self) {
            guard !range.isEmpty, !terms.isEmpty else { return }
            gemm(.none, .none, rows: rows, columns: range.count, inner: terms.count, alpha: alpha,
                 a: a + terms.lowerBound, lda: lda, b: b + terms.lowerBound * ldb + range.lowerBound, ldb: ldb,
                 beta: beta, c: c + range.lowerBound, ldc: ldc)
        }
        switch plan {
        case let .overlapping(aligned):
            product(columns: 0..<aligned, inner: 0..<inner, beta: beta)
            product(columns: (columns - 16)..<columns, inner: 0..<inner, beta: beta)
        case let .innerBlocks(aligned):
            product(columns: 0..<aligned, inner: 0..<inner, beta: beta)
            for first in stride(from: 0, to: inner, by: MallocFreeNN.innerBlock) {
                product(columns: aligned..<columns, inner: first..<Swift.min(inner, first + MallocFreeNN.innerBlock),
                        beta: first == 0 ? beta : 1)
            }
        }
    }
}

/// OpenBLAS's own thread count (threads inside each GEMM); 1 when the engine parallelizes over the batch itself.
@usableFromInline package enum BLASThreads {
    @usableFromInline package static func set(_ count: Int) {
        started.withLock { highest in
            // OpenBLAS never ends a thread: the count it was loaded with is the first high-water mark.
            if highest == 0 { highest = Int(openblas_get_num_threads()) }
            openblas_set_num_threads(Int32(max(1, count)))
            highest = Swift.max(highest, Int(openblas_get_num_threads()))
        }
    }
    /// The most threads OpenBLAS has been set to (its worker threads are one fewer); 0 before the first `set`.
    static let started = Mutex<Int>(0)
    @usableFromInline package static var current: Int { Int(openblas_get_num_threads()) }
    @usableFromInline package static var processors: Int { Int(openblas_get_num_procs()) }
    /// OpenBLAS's build configuration and kernel, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH … Zen (Zen)".
    @usableFromInline package static var configuration: String {
        String(cString: openblas_get_config()) + " (" + BLASKernel.summary + ")"
    }
}
