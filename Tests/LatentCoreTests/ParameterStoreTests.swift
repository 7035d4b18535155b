import LatentCore
import XCTest

final class ParameterStoreTests: XCTestCase {
    func testViewsAreContiguousAndNamed() {
        let store = ParameterStore<Double>()
        let a = store.reserve("enc.0.weight", count: 12)
        let b = store.reserve("enc.0.bias", count: 4)
        let c = store.reserve("dec.0.weight", count: 0)
        let d = store.reserve("dec.0.bias", count: 5)
        store.allocate()
        XCTAssertEqual([a, b, c, d].map(\.offset), [0, 12, 16, 16])
        XCTAssertEqual(d.range, 16..<21)
        XCTAssertEqual(store.count, 21)
        XCTAssertEqual(store.views, [a, b, c, d])
        for (v, next) in zip(store.views, store.views.dropFirst()) { XCTAssertEqual(v.range.upperBound, next.offset) }
        XCTAssertEqual(store.view(named: "enc.0.bias"), b)
        XCTAssertNil(store.view(named: "missing"))
        XCTAssertEqual(store.parameters.count, 21)
        XCTAssertEqual(store.gradients.count, 21)
        XCTAssertEqual(store.parameters.array, [Double](repeating: 0, count: 21))
        XCTAssertEqual(store.gradients.array, [Double](repeating: 0, count: 21))
        // Parameters and gradients are distinct memory.
        store.parameters[3] = 1
        XCTAssertEqual(store.gradients[3], 0)
    }

    func testBufferIsAlignedZeroedAndResettable() {
        for count in [0, 1, 7, 100] {
            let b = Buffer<Float>(count: count)
            XCTAssertEqual(Int(bitPattern: b.pointer) % 64, 0)
            XCTAssertEqual(b.array, [Float](repeating: 0, count: count))
        }
        let b = Buffer<Double>([1, 2, 3])
        XCTAssertEqual(b.array, [1, 2, 3])
        b[1] = 5
        XCTAssertEqual(b[1], 5)
        b.zero()
        XCTAssertEqual(b.array, [0, 0, 0])
    }
}
