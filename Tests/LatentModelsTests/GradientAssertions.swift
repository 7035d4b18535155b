import LatentCore
import TestSupport
import XCTest

/// Shared helpers of the finite-difference tests: seeded random inputs and the gradient comparison.
extension XCTestCase {
    /// The relative error every gradient check must stay below (DESIGN.md § Conventions 4).
    static var gradientTolerance: Double { 1e-6 }

    func uniform(_ n: Int, seed: UInt64, _ lo: Double = -1, _ hi: Double = 1) -> [Double] {
        var rng = RandomStream(seed: seed, purpose: .sampling)
        return (0..<n).map { _ in lo + (hi - lo) * rng.uniform() }
    }

    func normals(_ n: Int, seed: UInt64) -> [Double] {
        var rng = RandomStream(seed: seed, purpose: .noise)
        return (0..<n).map { _ in rng.normal() }
    }

    /// Analytic vs numerical gradient of one group; the numerical gradient must not be trivially zero.
    func assertGradient(_ analytic: [Double], _ numerical: [Double], _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(analytic.count, numerical.count, what, file: file, line: line)
        XCTAssertTrue(analytic.allSatisfy { $0.isFinite }, "\(what): non-finite analytic gradient \(analytic)",
                      file: file, line: line)
        XCTAssertGreaterThan(numerical.map(abs).max() ?? 0, 1e-4, "\(what): vacuous check (gradient ≈ 0)",
                             file: file, line: line)
        let error = scaledGradientError(analytic: analytic, numerical: numerical)
        XCTAssertLessThan(error, XCTestCase.gradientTolerance,
                          "\(what): scaled gradient error \(error)\nanalytic  \(analytic)\nnumerical \(numerical)",
                          file: file, line: line)
    }
}
