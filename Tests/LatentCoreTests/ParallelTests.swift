import LatentCore
import XCTest

final class ParallelTests: XCTestCase {
    func testSliceCoversRangeExactlyWithNearEqualParts() {
        for total in 0...64 {
            for parts in 1...9 {
                var next = 0
                var sizes: [Int] = []
                for part in 0..<parts {
                    let s = Parallel.slice(total, parts: parts, part: part)
                    XCTAssertEqual(s.lowerBound, next, "total \(total) parts \(parts) part \(part): gap or overlap")
                    next = s.upperBound
                    sizes.append(s.count)
                }
                XCTAssertEqual(next, total, "total \(total) parts \(parts): does not end at total")
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "total \(total) parts \(parts): \(sizes)")
                XCTAssertEqual(sizes.reduce(0, +), total)
            }
        }
    }

    func testRunCallsEveryPartOnce() {
        for count in [1, 2, 3, 8] {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
            hits.initialize(repeating: 0, count: count)
            defer { hits.deallocate() }
            Parallel.run(count) { part in hits[part] += 1 }  // disjoint slots
            XCTAssertEqual(Array(UnsafeBufferPointer(start: hits, count: count)), [Int](repeating: 1, count: count))
        }
    }
}
