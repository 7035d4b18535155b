import Foundation
import LatentCore
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The mixture prior's log p in Float against the same computation in Double (at the same Float-representable
/// inputs) over log v ∈ [−12, 4], |m| ≤ 6 and z within a few standard deviations of a component: within 1e-3 nats.
final class MixturePriorPrecisionTests: XCTestCase {
    func testFloatLogDensityWithinAMilliNatOfDoubleOverTheGrid() {
        let k = 8, K = 3
        let floatStore = ParameterStore<Float>(), doubleStore = ParameterStore<Double>()
        let floatPrior = GaussianMixturePrior(components: K, latent: k, store: floatStore)
        let doublePrior = GaussianMixturePrior(components: K, latent: k, store: doubleStore)
        floatStore.allocate()
        doubleStore.allocate()
        // Per-dimension patterns, so that dimensions differ in mean sign and variance.
        let signs: [Double] = [1, -1, 0.5, -0.25, 1, -0.75, 0, 1]
        let spreads: [Double] = [0, 0.5, -0.5, 0.25, -0.25, 0, 0.5, -0.5]
        let offsets: [Double] = [0, 0.3, -1, 2, -3, 0.5, -0.1, 1.5]
        var cases = 0
        for logVariance in stride(from: -12.0, through: 4.0, by: 1.0) {
            for mean in [-6.0, -4.0, -1.5, 0, 2.5, 6.0] {
                // Component 0 at (mean, logVariance), component 1 mirrored with a 1-nat larger variance, component 2
                // standard normal: z near component 0 makes it dominate, the others add to the log-sum-exp.
                var means = [Double](), logVariances = [Double]()
                for i in 0..<k { means.append(mean * signs[i]); logVariances.append(min(4, logVariance + spreads[i])) }
                for i in 0..<k { means.append(-mean * signs[i]); logVariances.append(min(4, logVariance + 1)) }
                means += [Double](repeating: 0, count: k)
                logVariances += [Double](repeating: 0, count: k)
                for i in 0..<(K * k) {
                    let m = Float(means[i]), l = Float(logVariances[i])
                    floatStore.parameters[floatPrior.means.offset + i] = m
                    floatStore.parameters[floatPrior.logVariances.offset + i] = l
                    doubleStore.parameters[doublePrior.means.offset + i] = Double(m)
                    doubleStore.parameters[doublePrior.logVariances.offset + i] = Double(l)
                }
                // Rows of z = m₀ + t·√v₀ for several t (t varying across dimensions), rounded to Float.
                var zFloat = [Float]()
                for (row, t) in [0.0, 0.3, -1.0, 2.0, -3.0].enumerated() {
                    for i in 0..<k {
                        let sd = Foundation.exp(logVariances[i] / 2)
                        zFloat.append(Float(means[i] + (t + 0.1 * offsets[(i + row) % k]) * sd))
                    }
                }
                let rows = zFloat.count / k
                let zf = Buffer<Float>(zFloat), zd = Buffer<Double>(zFloat.map(Double.init))
                let outF = Buffer<Float>(count: rows), outD = Buffer<Double>(count: rows)
                let logNF = Buffer<Float>(count: rows * K), logND = Buffer<Double>(count: rows * K)
                floatPrior.logDensity(parameters: floatStore.parameters.pointer, z: zf.pointer, rows: rows,
                                      out: outF.pointer, componentLogDensities: logNF.pointer)
                doublePrior.logDensity(parameters: doubleStore.parameters.pointer, z: zd.pointer, rows: rows,
                                       out: outD.pointer, componentLogDensities: logND.pointer)
                for r in 0..<rows {
                    let error = abs(Double(outF[r]) - outD[r])
                    XCTAssertTrue(outD[r].isFinite, "log v \(logVariance), m \(mean), row \(r): \(outD[r])")
                    XCTAssertLessThan(error, 1e-3, "log v \(logVariance), m \(mean), row \(r): Float \(outF[r]) "
                                      + "vs Double \(outD[r])")
                    cases += 1
                }
            }
        }
        XCTAssertEqual(cases, 17 * 6 * 5)
    }
}
