import LatentCore
import XCTest

/// The worker pool runs every part with subnormals flushed to zero and gives the calling thread its mode back.
final class SubnormalFlushingTests: XCTestCase {
    /// Half the smallest normal Float, computed at run time from a buffer (so no constant is folded): subnormal
    /// normally, zero when results are flushed; and the smallest subnormal read as an operand, zero under DAZ.
    static func underflows(_ operands: UnsafePointer<Float>) -> (product: Float, subnormalTimesOne: Float) {
        (operands[0] * operands[1], operands[2] * operands[3])
    }

    func testPoolPartsFlushSubnormalsAndTheCallerGetsItsModeBack() throws {
        #if arch(x86_64)
        let operands = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        defer { operands.deallocate() }
        operands.initialize(from: [Float.leastNormalMagnitude, 0.5, Float.leastNonzeroMagnitude, 1], count: 4)
        XCTAssertFalse(SubnormalFlushing.isEnabled, "the test thread starts in the default mode")
        let outside = Self.underflows(operands)
        XCTAssertEqual(outside.product, Float.leastNormalMagnitude / 2)
        XCTAssertEqual(outside.subnormalTimesOne, Float.leastNonzeroMagnitude)
        for size in [1, 2, 3] {
            let pool = try WorkerPool(size: size)
            let results = UnsafeMutablePointer<(Bool, Float, Float)>.allocate(capacity: size)
            defer { results.deallocate() }
            pool.run { part in
                let r = Self.underflows(operands)
                results[part] = (SubnormalFlushing.isEnabled, r.product, r.subnormalTimesOne)
            }
            for part in 0..<size {
                XCTAssertTrue(results[part].0, "pool of \(size), part \(part)")
                XCTAssertEqual(results[part].1, 0, "pool of \(size), part \(part): FTZ")
                XCTAssertEqual(results[part].2, 0, "pool of \(size), part \(part): DAZ")
            }
            XCTAssertFalse(SubnormalFlushing.isEnabled, "pool of \(size): the caller's mode is restored")
            XCTAssertEqual(Self.underflows(operands).product, Float.leastNormalMagnitude / 2)
        }
        #else
        // Flushing is set through x86-64's MXCSR; elsewhere the pool leaves the mode alone.
        try WorkerPool(size: 2).run { _ in XCTAssertFalse(SubnormalFlushing.isEnabled) }
        #endif
    }
}
