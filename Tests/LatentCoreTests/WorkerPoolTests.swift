import LatentCore
import XCTest

/// A pool's size is bounded before any thread starts, and its failures are errors, not traps.
final class WorkerPoolTests: XCTestCase {
    func testAPoolPastTheMaximumIsRefusedBeforeAnyThreadStarts() throws {
        let before = try XCTUnwrap(ProcessThreads.count())
        XCTAssertThrowsError(try WorkerPool(size: WorkerPool.maximumSize + 1)) { error in
            XCTAssertEqual(error as? WorkerPoolError,
                           .tooManyThreads(requested: WorkerPool.maximumSize + 1, limit: WorkerPool.maximumSize))
            XCTAssertFalse("\(error)".contains("\n"))
        }
        XCTAssertEqual(ProcessThreads.count(), before)
        let pool = try WorkerPool(size: 4)
        var parts = [Int](repeating: 0, count: 4)
        parts.withUnsafeMutableBufferPointer { p in pool.run { p[$0] += 1 } }
        XCTAssertEqual(parts, [1, 1, 1, 1])
    }

    func testTheMessagesNameTheRemedy() {
        let error = WorkerPoolError.cannotStart(thread: 38, of: 99, reason: "Resource temporarily unavailable")
        XCTAssertTrue(error.description.hasSuffix("use fewer threads"), error.description)
        XCTAssertTrue(error.message(fewerThreads: "lower --threads").contains("thread 38 of 99"))
    }
}
