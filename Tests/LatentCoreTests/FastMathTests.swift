import Foundation
import LatentCore
import XCTest

/// The polynomial Float kernels against the C library in Double, at the accuracy their documentation states.
final class FastMathTests: XCTestCase {
    /// Float ulp at the magnitude of `x` (as a Double).
    func ulp(_ x: Double) -> Double { Double(Float(x).ulp) }

    func grid(_ lo: Double, _ hi: Double, _ n: Int) -> [Float] {
        (0...n).map { Float(lo + (hi - lo) * Double($0) / Double(n)) }
    }

    /// "~2 ulp" over the finite range of exp.
    func testFastExpAccuracy() {
        var worst = (ulps: 0.0, x: Float(0))
        for x in grid(-87, 88, 20_000) + [0, -1e-7, 1e-7, 1, -1] {
            let exact = Foundation.exp(Double(x))
            let got = Double(Float.fastExp(x))
            let ulps = abs(got - exact) / ulp(exact)
            if ulps > worst.ulps { worst = (ulps, x) }
        }
        XCTAssertLessThanOrEqual(worst.ulps, 2, "fastExp worst error \(worst.ulps) ulp at x = \(worst.x)")
    }

    /// The documentation says inputs are clamped to the finite range: e^x is finite up to x ≈ 88.7228 in Float.
    func testFastExpFiniteAtTopOfRange() {
        for x: Float in [88.0, 88.3, 88.4, 88.5, 88.7] {
            let exact = Foundation.exp(Double(x))
            XCTAssertLessThan(exact, Double(Float.greatestFiniteMagnitude))
            let got = Float.fastExp(x)
            XCTAssertTrue(got.isFinite, "fastExp(\(x)) = \(got), but e^\(x) = \(exact) is a finite Float")
            if got.isFinite { XCTAssertLessThanOrEqual(abs(Double(got) - exact) / ulp(exact), 2, "x = \(x)") }
        }
        // Below the range the result is clamped, never NaN or negative.
        for x: Float in [-88, -100, -1000, -.infinity] {
            let got = Float.fastExp(x)
            XCTAssertTrue(got >= 0 && got < 1.2e-38 * 1.01, "fastExp(\(x)) = \(got)")
        }
    }

    /// A NaN (a diverged model's pre-activation) comes out NaN, so the step's finiteness checks see it; it used to
    /// trap converting n to an integer.
    func testFastExpPropagatesNaN() {
        XCTAssertTrue(Float.fastExp(.nan).isNaN)
        XCTAssertTrue(Float.fastExpMinusOne(.nan).isNaN)
    }

    func testFastLogAccuracy() {
        var worst = (ulps: 0.0, x: Float(0))
        var xs: [Float] = grid(0.5, 2, 10_000)
        for e in -120...120 { xs.append(Float(Foundation.pow(2.0, Double(e)) * 1.3)) }
        xs += [1, Float(1).nextUp, Float(1).nextDown, 1e-30, 3e38]
        for x in xs where x.isNormal {
            let exact = Foundation.log(Double(x))
            let got = Double(Float.fastLog(x))
            // Relative to the result, with an absolute floor of one ulp of 1 × |t| near x = 1 where log → 0.
            let ulps = abs(got - exact) / max(ulp(exact), Double(Float.leastNormalMagnitude))
            if ulps > worst.ulps { worst = (ulps, x) }
        }
        XCTAssertLessThanOrEqual(worst.ulps, 2, "fastLog worst error \(worst.ulps) ulp at x = \(worst.x)")
    }

    func testFastExpMinusOneAndLogOnePlusAbsoluteAccuracy() {
        // ELU's negative branch and softplus: what matters next to O(1) activations is the absolute error.
        for x in grid(-20, 0, 5000) {
            let exact = Foundation.expm1(Double(x))
            XCTAssertEqual(Double(Float.fastExpMinusOne(x)), exact, accuracy: 2 * Double(Float.ulpOfOne), "expm1 at \(x)")
        }
        for x in grid(0, 1, 5000) {
            let exact = Foundation.log1p(Double(x))
            XCTAssertEqual(Double(Float.fastLogOnePlus(x)), exact, accuracy: 2 * Double(Float.ulpOfOne), "log1p at \(x)")
        }
    }

    /// log(1 + e) on [0, 1] from e and 1/(2 + e) (the Bernoulli likelihood's softplus): within two ulps of 1 in
    /// absolute terms and 1e-6 relative, down to e far below Float's epsilon (where log1p(e) ≈ e).
    func testFastLogOnePlusUnitAccuracy() {
        for e in grid(0, 1, 5000) + [1e-30, 1e-12, 1e-7, 1e-4] {
            let exact = Foundation.log1p(Double(e))
            let got = Double(Float.fastLogOnePlusUnit(e, reciprocalOfTwoPlus: 1 / (2 + e)))
            XCTAssertEqual(got, exact, accuracy: 2 * Double(Float.ulpOfOne), "log1p at \(e)")
            XCTAssertEqual(got, exact, accuracy: 1e-6 * exact, "relative, log1p at \(e)")
        }
        XCTAssertEqual(Double.fastLogOnePlusUnit(0.3, reciprocalOfTwoPlus: .nan), Foundation.log1p(0.3))
    }

    func testDoubleForwardsToTheCLibrary() {
        for x in stride(from: -30.0, through: 30.0, by: 0.731) {
            XCTAssertEqual(Double.fastExp(x), Foundation.exp(x))
            XCTAssertEqual(Double.fastExpMinusOne(x), Foundation.expm1(x))
            if x > 0 {
                XCTAssertEqual(Double.fastLog(x), Foundation.log(x))
                XCTAssertEqual(Double.fastLogOnePlus(x), Foundation.log1p(x))
            }
        }
        let v = SIMD8<Double>(0, 1, 2, 4, 1e-300, 1e300, 0.25, 17)
        let r = Double.fastSquareRoot(v)
        for i in 0..<8 { XCTAssertEqual(r[i], v[i].squareRoot()) }
    }

    /// "≤ 2.1e-7 relative error, √0 = 0", for the portable Newton form and for whatever `fastSquareRoot` uses here.
    func testFastSquareRootAccuracy() {
        var values: [Float] = [0, 1, 2, 4, 0.25, Float.leastNormalMagnitude, 1e-30, 1e30, Float.greatestFiniteMagnitude]
        for e in -125...127 { values.append(Float(Foundation.pow(2.0, Double(e)))); values.append(Float(Foundation.pow(2.0, Double(e)) * 1.7)) }
        for i in 0..<2000 { values.append(Float(Foundation.exp(Double(i) / 2000 * 40 - 20))) }
        for (name, root) in squareRoots {
            var worst = (error: 0.0, v: Float(0))
            var i = 0
            while i < values.count {
                var lane = SIMD8<Float>(repeating: 1)
                for j in 0..<8 where i + j < values.count { lane[j] = values[i + j] }
                let r = root(lane)
                for j in 0..<8 where i + j < values.count {
                    let exact = Double(lane[j]).squareRoot()
                    let error = exact == 0 ? abs(Double(r[j])) : abs(Double(r[j]) - exact) / exact
                    if error > worst.error { worst = (error, lane[j]) }
                }
                i += 8
            }
            XCTAssertEqual(root(SIMD8(repeating: 0))[0], 0, name)
            XCTAssertLessThanOrEqual(worst.error, 2.1e-7, "\(name) worst relative error \(worst.error) at v = \(worst.v)")
        }
    }

    /// Adam's second moment can underflow into the subnormal range (v = (1 − β₂) g² with |g| < 1e-19).
    func testFastSquareRootSubnormals() {
        let lane = SIMD8<Float>(1e-39, 5e-40, 1e-41, 1e-43, Float.leastNonzeroMagnitude, 3e-45, 1e-44, 1.1e-38)
        for (name, root) in squareRoots {
            let r = root(lane)
            for j in 0..<8 {
                let exact = Double(lane[j]).squareRoot()
                XCTAssertLessThanOrEqual(abs(Double(r[j]) - exact) / exact, 2.1e-7, "\(name): √\(lane[j]) = \(r[j]), exact \(exact)")
            }
        }
    }

    /// `fastSquareRoot` is the path this platform should take: on x86-64 the hardware square root, which is
    /// correctly rounded and so equals the scalar √ bit for bit; elsewhere exactly the portable Newton form.
    func testFastSquareRootTakesThisPlatformsPath() {
        var lane = SIMD8<Float>(0, 1, 2, 3, 1e-40, 7e30, 0.1, 12345.678)
        for round in 0..<100 {
            let r = Float.fastSquareRoot(lane)
            #if arch(x86_64)
            let expected = SIMD8<Float>((0..<8).map { lane[$0].squareRoot() })
            #else
            let expected = Float.newtonSquareRoot(lane)
            #endif
            for j in 0..<8 { XCTAssertEqual(r[j], expected[j], "√\(lane[j])") }
            lane = lane * 1.37 + Float(round)
        }
    }

    private let squareRoots: [(String, (SIMD8<Float>) -> SIMD8<Float>)] = [
        ("fastSquareRoot", Float.fastSquareRoot), ("newtonSquareRoot", Float.newtonSquareRoot),
    ]
}
