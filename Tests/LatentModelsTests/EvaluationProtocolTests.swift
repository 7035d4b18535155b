import LatentModels
import LatentEvaluation
import LatentTraining
import XCTest

/// The cs236 preset's fixed subset: exactly the first 10 test images of each class, or an error naming the class.
final class EvaluationProtocolTests: XCTestCase {
    func testSubsetIsTheFirstTenOfEachClassInClassOrder() throws {
        // 120 labels cycling 9, 8, …, 0: class c sits at indices 9 − c, 19 − c, …
        let labels = (0..<120).map { UInt8(9 - $0 % 10) }
        let subset = try EvaluationProtocol.cs236Subset(testLabels: labels)
        let expected = (0..<10).flatMap { c in (0..<10).map { 10 * $0 + 9 - c } }
        XCTAssertEqual(subset, expected)
    }

    func testAClassWithFewerThanTenImagesIsAnErrorNamingIt() {
        // Class 3 has only 7 images; every other class has 12.
        var labels = (0..<120).map { UInt8($0 % 10) }
        var removed = 0
        labels.removeAll { label in
            guard label == 3, removed < 5 else { return false }
            removed += 1
            return true
        }
        XCTAssertThrowsError(try EvaluationProtocol.cs236Subset(testLabels: labels)) { error in
            XCTAssertEqual(error as? EvaluationError, .cs236ClassTooSmall(label: 3, images: 7))
            let message = "\(error)"
            XCTAssertTrue(message.contains("class 3 has only 7"), message)
            XCTAssertTrue(message.contains("--preset cs236"), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
        XCTAssertThrowsError(try EvaluationProtocol.cs236Subset(testLabels: [])) { error in
            XCTAssertEqual(error as? EvaluationError, .cs236ClassTooSmall(label: 0, images: 0))
        }
    }
}
