import TestSupport
import XCTest

/// The comparison helpers every gradient and reference check relies on: a NaN must fail, never pass as error 0.
final class ComparisonHelperTests: XCTestCase {
    func testMaxRelativeErrorFailsOnNaNInEitherArgument() {
        let good = [1.0, -2.0, 3.0]
        for (a, b) in [([1.0, .nan, 3.0], good), (good, [1.0, .nan, 3.0]), ([.nan, .nan, .nan], good),
                       (good, [.nan, .nan, .nan])] {
            let worst = maxRelativeError(a, b)
            XCTAssertFalse(worst.error < 1e-9, "\(a) vs \(b): error \(worst.error) would pass a check")
            XCTAssertTrue(a.indices.contains(worst.index) && (a[worst.index].isNaN || b[worst.index].isNaN),
                          "\(a) vs \(b): index \(worst.index) must name a NaN")
        }
        // A NaN after a larger finite error is still reported, not hidden behind it.
        XCTAssertFalse(maxRelativeError([1, 5, .nan], [1, 1, 1]).error < 1)
        // An infinity against a finite value fails; equal values (infinities included) do not.
        XCTAssertFalse(maxRelativeError([.infinity], [1]).error < 1e-9)
        XCTAssertEqual(maxRelativeError([.infinity, 2], [.infinity, 2]).error, 0)
        XCTAssertEqual(maxRelativeError(good, good).error, 0)
        XCTAssertEqual(maxRelativeError([1, 2], [1, 2 + 2e-6]).index, 1)
    }

    /// A parameter missing from a fixture is filled with NaN (ReferenceVector.expectedGradient): it must fail.
    func testMissingFixtureEntryFailsTheCheck() {
        let computed = [0.5, -0.25, 1e-13, 2.0]
        var expected = computed
        expected[2] = .nan
        XCTAssertFalse(maxRelativeError(computed, expected, floor: 1e-12).error < 1e-9)
    }

    func testScaledGradientErrorFailsOnNaNInEitherArgument() {
        let good = [0.5, -1.0, 2.0]
        for (a, n) in [([0.5, .nan, 2.0], good), (good, [0.5, .nan, 2.0]), ([.nan, .nan, .nan], good),
                       (good, [.nan, .nan, .nan]), (good, [0.5, -1.0])] {
            XCTAssertFalse(scaledGradientError(analytic: a, numerical: n) < 1e-6, "\(a) vs \(n)")
        }
        XCTAssertEqual(scaledGradientError(analytic: good, numerical: good), 0)
    }
}
