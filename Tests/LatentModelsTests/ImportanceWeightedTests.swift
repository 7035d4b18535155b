import Foundation
import LatentCore
import LatentData
import TestSupport
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The mixture prior (MATH.md §5) and the importance-weighted bound (MATH.md §4) against independent computations:
/// brute-force densities, central finite differences in Double (relative error below 1e-6), the one-sample ELBO
/// with a Monte Carlo KL, and the ordering of the bounds in m on a trained model.
final class ImportanceWeightedTests: XCTestCase {

    // MARK: - Helpers

    // MARK: - 6. Mixture prior

    /// A K = 4, k = 3 mixture in a store that also holds another view in front of it (offsets must be honoured).
    func makeMixture(seed: UInt64) -> (GaussianMixturePrior, ParameterStore<Double>) {
        let store = ParameterStore<Double>()
        store.reserve("unrelated", count: 5)
        let prior = GaussianMixturePrior(components: 4, latent: 3, store: store)
        store.allocate()
        XCTAssertEqual(prior.means.offset, 5)
        XCTAssertEqual(prior.logVariances.count, 12)
        let p = store.parameters
        for (i, v) in uniform(12, seed: seed, -1.5, 1.5).enumerated() { p[prior.means.offset + i] = v }
        for (i, v) in uniform(12, seed: seed + 1, -0.8, 0.8).enumerated() { p[prior.logVariances.offset + i] = v }
        for i in 0..<5 { p[i] = .nan }  // the prior must not read them
        return (prior, store)
    }

    /// log (1/K) Σ_j Π_i N(z_i; m_ji, exp ℓ_ji), each component density written out as a product, the sum over
    /// components shifted by its largest term only so that far-away z do not underflow.
    func bruteForceMixtureLogDensity(_ z: [Double], means: [Double], logVariances: [Double], components K: Int) -> Double {
        let k = z.count
        var logComponents = [Double]()
        for j in 0..<K {
            var logDensity = 0.0
            for i in 0..<k {
                let v = Foundation.exp(logVariances[j * k + i]), diff = z[i] - means[j * k + i]
                let density = Foundation.exp(-diff * diff / (2 * v)) / (2 * Double.pi * v).squareRoot()
                // The density itself where it is representable, its logarithm written out where it underflows.
                logDensity += density > 1e-300 ? Foundation.log(density)
                    : -diff * diff / (2 * v) - 0.5 * Foundation.log(2 * Double.pi * v)
            }
            logComponents.append(logDensity)
        }
        let top = logComponents.max()!
        let total = logComponents.reduce(0.0) { $0 + Foundation.exp($1 - top) }
        return top + Foundation.log(total / Double(K))
    }

    func testMixturePriorLogDensityMatchesBruteForce() {
        let (prior, store) = makeMixture(seed: 600)
        let k = 3, K = 4
        var zValues = uniform(4 * k, seed: 602, -2, 2)
        zValues += [30, -25, 40]  // far from every component: log N_j ≈ −10³, exp underflows
        let rows = zValues.count / k
        let z = Buffer<Double>(zValues), out = Buffer<Double>(count: rows), logN = Buffer<Double>(count: rows * K)
        prior.logDensity(parameters: store.parameters.pointer, z: z.pointer, rows: rows, out: out.pointer,
                         componentLogDensities: logN.pointer)
        let means = Array(store.parameters.array[prior.means.range])
        let logVariances = Array(store.parameters.array[prior.logVariances.range])
        for r in 0..<rows {
            let zr = Array(zValues[(r * k)..<((r + 1) * k)])
            let expected = bruteForceMixtureLogDensity(zr, means: means, logVariances: logVariances, components: K)
            XCTAssertTrue(out[r].isFinite, "row \(r): \(out[r])")
            XCTAssertLessThan(relativeError(out[r], expected, floor: 1), 1e-12, "row \(r): \(out[r]) vs \(expected)")
            for j in 0..<K {
                let single = bruteForceMixtureLogDensity(zr, means: Array(means[(j * k)..<((j + 1) * k)]),
                                                         logVariances: Array(logVariances[(j * k)..<((j + 1) * k)]),
                                                         components: 1)
                XCTAssertLessThan(relativeError(logN[r * K + j], single, floor: 1), 1e-12, "row \(r) component \(j)")
            }
        }
        withExtendedLifetime((z, out, logN)) {}
    }

    /// ∂/∂z, ∂/∂m, ∂/∂ℓ of Σ_r c_r log p(z_r) from `backward` against central differences of `logDensity`; with
    /// c = 1 into zeroed buffers, then with mixed coefficients into buffers that already hold values (it adds).
    func testMixturePriorBackwardMatchesFiniteDifferences() {
        let k = 3, K = 4, rows = 3
        for (trial, coefficients) in [[1.0, 1.0, 1.0], [0.5, -1.3, 2.0]].enumerated() {
            let (prior, store) = makeMixture(seed: 610 + UInt64(10 * trial))
            let p = store.parameters.pointer
            // z near the components so that several responsibilities are far from 0 and 1.
            let z = Buffer<Double>(uniform(rows * k, seed: 612 + UInt64(10 * trial), -1.5, 1.5))
            let out = Buffer<Double>(count: rows), logN = Buffer<Double>(count: rows * K)
            let c = Buffer<Double>(coefficients)
            let f: () -> Double = {
                prior.logDensity(parameters: p, z: z.pointer, rows: rows, out: out.pointer,
                                 componentLogDensities: logN.pointer)
                return (0..<rows).reduce(0.0) { $0 + coefficients[$1] * out[$1] }
            }
            _ = f()
            // The responsibilities are not degenerate (the check exercises the softmax).
            let spread = (0..<rows).map { r in (0..<K).map { Foundation.exp(logN[r * K + $0] - out[r] - Foundation.log(Double(K))) } }
            XCTAssertTrue(spread.contains { $0.filter { $0 > 0.05 }.count >= 2 }, "responsibilities \(spread)")
            let dzOffset = trial == 0 ? [Double](repeating: 0, count: rows * k) : uniform(rows * k, seed: 615)
            let gOffset = trial == 0 ? [Double](repeating: 0, count: store.count) : uniform(store.count, seed: 616)
            let dz = Buffer<Double>(dzOffset), g = store.gradients
            for i in 0..<store.count { g[i] = gOffset[i] }
            prior.backward(parameters: p, gradients: g.pointer, z: z.pointer, rows: rows, logDensity: out.pointer,
                           componentLogDensities: logN.pointer, coefficient: c.pointer, dz: dz.pointer)
            let label = "coefficients \(coefficients)"
            for i in 0..<5 { XCTAssertEqual(g[i], gOffset[i], "\(label): unrelated gradient entry \(i) touched") }
            assertGradient((0..<(rows * k)).map { dz[$0] - dzOffset[$0] },
                           numericalGradient(of: f, at: z.pointer, indices: Array(0..<(rows * k))), "\(label): z")
            for view in [prior.means, prior.logVariances] {
                assertGradient(view.range.map { g[$0] - gOffset[$0] },
                               numericalGradient(of: f, at: p, indices: Array(view.range)), "\(label): \(view.name)")
            }
            withExtendedLifetime((c, dz)) {}
        }
    }

    // MARK: - 7. IWAE objective gradient

    func makeModel(posterior: PosteriorKind, prior: PriorKind, samples: Int, seed: UInt64) throws
        -> VariationalAutoencoder<Double> {
        let configuration = ModelConfiguration(model: .iwae, posterior: posterior, inputs: 6, hidden: [5, 4], latent: 3,
                                               activation: .elu, samples: samples, prior: prior, components: 4)
        try configuration.validate()
        let model = VariationalAutoencoder<Double>(configuration)
        model.initialize(seed: seed)
        let p = model.store.parameters.pointer
        // Larger weights than the default initialization so that every group carries a clear signal.
        let perturbation = uniform(model.parameterCount, seed: seed + 1, -0.1, 0.1)
        for i in 0..<model.parameterCount { p[i] = 2 * p[i] + perturbation[i] }
        if let mixture = model.mixture {
            // Spread-out components with unequal variances (the default is means ≈ 0, unit variances).
            for (i, v) in uniform(mixture.means.count, seed: seed + 2).enumerated() { p[mixture.means.offset + i] = v }
            for (i, v) in uniform(mixture.logVariances.count, seed: seed + 3, -0.5, 0.5).enumerated() {
                p[mixture.logVariances.offset + i] = v
            }
        }
        return model
    }

    func checkIWAEGradient(posterior: PosteriorKind, prior: PriorKind, seed: UInt64,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        for m in [1, 3, 7] {
            let model = try makeModel(posterior: posterior, prior: prior, samples: m, seed: seed + UInt64(m))
            let rows = 2, d = model.configuration.inputs, k = model.configuration.latent
            let p = model.store.parameters.pointer
            let ws = StepWorkspace(model: model, capacity: rows, samples: m)
            for (i, v) in uniform(rows * d, seed: seed + 20, 0, 1).enumerated() { ws.x[i] = v < 0.5 ? 1 : 0 }
            for (i, v) in normals(m * rows * k, seed: seed + 30 + UInt64(m)).enumerated() { ws.noise[i] = v }
            let lossScale = 1 / Double(rows)
            let f: () -> Double = {
                lossScale * ((try? ImportanceWeighted.evaluate(model: model, parameters: p, rows: rows, samples: m,
                                                               workspace: ws, gradients: nil, lossScale: lossScale))?
                    .loss ?? .nan)
            }
            let g = model.store.gradients
            for i in 0..<g.count { g[i] = .nan }  // must be overwritten
            let sums = try ImportanceWeighted.evaluate(model: model, parameters: p, rows: rows, samples: m,
                                                       workspace: ws, gradients: g.pointer, lossScale: lossScale)
            let label = "\(posterior)/\(prior) m=\(m)"
            XCTAssertEqual(sums.loss * lossScale, f(), "\(label): the gradient pass reports the same loss",
                           file: file, line: line)
            XCTAssertTrue(sums.loss.isFinite && sums.loss > 0, "\(label): \(sums)", file: file, line: line)
            let analytic = g.array
            let expectedViews = 2 * (model.configuration.hidden.count + 1) * 2 + (prior == .mixture ? 2 : 0)
            XCTAssertEqual(model.store.views.count, expectedViews, label, file: file, line: line)
            for view in model.store.views {
                assertGradient(view.range.map { analytic[$0] },
                               numericalGradient(of: f, at: p, indices: Array(view.range)), "\(label) \(view.name)",
                               file: file, line: line)
            }
        }
    }

    func testIWAEGradientNormalPriorDiagonal() throws {
        try checkIWAEGradient(posterior: .diagonal, prior: .normal, seed: 700)
    }

    func testIWAEGradientNormalPriorFull() throws {
        try checkIWAEGradient(posterior: .full, prior: .normal, seed: 720)
    }

    func testIWAEGradientMixturePriorDiagonal() throws {
        try checkIWAEGradient(posterior: .diagonal, prior: .mixture, seed: 740)
    }

    func testIWAEGradientMixturePriorFull() throws {
        try checkIWAEGradient(posterior: .full, prior: .mixture, seed: 760)
    }

    // MARK: - 8. m = 1 is the one-sample ELBO with the Monte Carlo KL

    /// With the same x and ε, −L_1 = Σ_r [Rec_r + log q(z_r|x_r) − log N(z_r; 0, I)], Rec_r from `ELBO.evaluate`
    /// and the two log-densities computed here from the encoder outputs (Σ by hand, Gaussian elimination).
    func testIWAEOneSampleEqualsMonteCarloELBO() throws {
        for (n, kind) in PosteriorKind.allCases.enumerated() {
            let model = try makeModel(posterior: kind, prior: .normal, samples: 1, seed: 800 + UInt64(10 * n))
            let rows = 3, d = model.configuration.inputs, k = model.configuration.latent
            let width = model.configuration.posteriorParameterCount
            let p = model.store.parameters.pointer
            let ws = StepWorkspace(model: model, capacity: rows, samples: 1)
            for (i, v) in uniform(rows * d, seed: 805, 0, 1).enumerated() { ws.x[i] = v < 0.5 ? 1 : 0 }
            for (i, v) in normals(rows * k, seed: 806).enumerated() { ws.noise[i] = v }

            let elbo = try ELBO.evaluate(model: model, parameters: p, rows: rows, workspace: ws, gradients: nil,
                                         lossScale: 1)
            let rec = (0..<rows).map { ws.rec[$0] }
            let z = (0..<(rows * k)).map { ws.z[$0] }
            let encoded = (0..<(rows * width)).map { ws.encoder.output[$0] }
            var expected = 0.0
            for r in 0..<rows {
                let row = Array(encoded[(r * width)..<((r + 1) * width)])
                let zr = Array(z[(r * k)..<((r + 1) * k)])
                let sigma = covarianceByHand(kind, row: row, latent: k, jitter: model.configuration.jitter)
                let logQ = bruteForceLogNormal(zr, mean: Array(row[0..<k]), covariance: sigma)
                let logPrior = -0.5 * zr.reduce(0) { $0 + $1 * $1 } - Double(k) / 2 * Foundation.log(2 * Double.pi)
                expected += rec[r] + logQ - logPrior
            }

            let iwae = try ImportanceWeighted.evaluate(model: model, parameters: p, rows: rows, samples: 1,
                                                       workspace: ws, gradients: nil, lossScale: 1)
            XCTAssertEqual((0..<rows).map { ws.rec[$0] }, rec, "\(kind): same Rec for the same z")
            XCTAssertEqual((0..<(rows * k)).map { ws.z[$0] }, z, "\(kind): same z for the same ε")
            XCTAssertEqual(iwae.rec, elbo.rec, accuracy: 1e-12 * elbo.rec, "\(kind)")
            XCTAssertLessThan(relativeError(iwae.loss, expected), 1e-12, "\(kind): −L_1 \(iwae.loss) vs \(expected)")
            XCTAssertLessThan(relativeError(iwae.kl, expected - elbo.rec, floor: 1), 1e-11,
                              "\(kind): Monte Carlo KL \(iwae.kl) vs \(expected - elbo.rec)")
        }
    }

    // MARK: - 9. Bounds ordered in m on a trained model

    /// Binary 8×8 images: one of four crosses (a horizontal bar in row 0 or 4 and a vertical bar in column 1 or 5),
    /// each pixel flipped with probability `flips`.
    func crossImages(count: Int, seed: UInt64, flips: Double = 0.04) -> ImageSet {
        var rng = RandomStream(seed: seed, purpose: .sampling)
        var pixels = [UInt8]()
        pixels.reserveCapacity(count * 64)
        for _ in 0..<count {
            let c = rng.index(below: 4)
            let row = (c / 2) * 4, column = (c % 2) * 4 + 1
            for i in 0..<8 {
                for j in 0..<8 {
                    let on = (i == row || j == column) != (rng.uniform() < flips)
                    pixels.append(on ? 255 : 0)
                }
            }
        }
        return ImageSet(count: count, rows: 8, columns: 8, pixels: pixels)
    }

    /// −L_1 ≥ −L_10 ≥ −L_100 ≥ −L_1000 (MATH.md §4) for a model trained 300 steps on crosses with 4% flipped
    /// pixels, and −L_1 within Monte Carlo noise of the NELBO.
    ///
    /// The ordering holds in expectation; one evaluation's nested estimates are noisy, and on images like the
    /// training ones the step from m = 100 to 1000 is only ≈ 0.03 nats, about two standard deviations of its
    /// noise even over 400 images (measured over 10 evaluation seeds). The held-out images therefore have 40% of
    /// their pixels flipped: the amortized posterior is a poorer proposal there, the bounds spread apart, and over
    /// 200 images (10 evaluation seeds, measured) the steps are 5.3 ± 0.5, 1.77 ± 0.12 and 0.91 ± 0.12 nats, the
    /// weakest about seven standard deviations from zero.
    func testBoundsOrderedOnTrainedModel() throws {
        let configuration = ModelConfiguration(inputs: 64, hidden: [32], latent: 4)
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: 900)
        let train = crossImages(count: 400, seed: 901)
        let trainer = try Trainer(model: model, images: train, batchSize: 40, learningRate: 3e-3, seed: 902, threads: 1)
        var firstEpoch = 0.0, lastEpoch = 0.0
        for epoch in 0..<30 {  // 300 steps
            trainer.beginEpoch(epoch)
            var sums = TermSums()
            for b in 0..<trainer.stepsPerEpoch { sums = sums + (try trainer.trainStep(batch: b)) }
            let mean = sums.nelbo / Double(sums.examples)
            if epoch == 0 { firstEpoch = mean }
            lastEpoch = mean
        }
        XCTAssertLessThan(lastEpoch, firstEpoch - 10, "training must have made progress: \(firstEpoch) → \(lastEpoch)")

        let count = 200
        let test = crossImages(count: count, seed: 903, flips: 0.4)
        let binarized = Binarization.staticBinarized(test, seed: 904, as: Float.self)
        let nelbo = try Evaluator(model: model, threads: 1).evaluate(binarized: binarized, count: count).nelbo / Double(count)
        let result = try ImportanceBoundEvaluator(model: model, threads: 1)
            .evaluate(binarized: binarized, count: count, sampleCounts: [1, 10, 100, 1000])
        let b = result.bounds
        XCTAssertEqual(Set(b.keys), [1, 10, 100, 1000])
        XCTAssertEqual(result.examples, count)
        XCTAssertTrue(b.values.allSatisfy { $0.isFinite && $0 > 0 }, "\(b)")
        XCTAssertGreaterThanOrEqual(b[1]!, b[10]!, "−L_1 ≥ −L_10: \(b)")
        XCTAssertGreaterThanOrEqual(b[10]!, b[100]!, "−L_10 ≥ −L_100: \(b)")
        XCTAssertGreaterThanOrEqual(b[100]!, b[1000]!, "−L_100 ≥ −L_1000: \(b)")

        // IWAE-1 and the NELBO estimate the same mean with independent noise: −L_1 uses the one-sample KL
        // log q − log p, the NELBO the analytic KL. Their difference has standard deviation
        // √((v̄_elbo + v̄_iw1)/N), v̄ the per-example Monte Carlo variance averaged over the examples, measured here
        // from 20 fresh draws per example; allow 5 standard deviations.
        let d = configuration.inputs, k = configuration.latent
        let ws = StepWorkspace(model: model, capacity: count, samples: 1)
        for i in 0..<(count * d) { ws.x[i] = binarized[i] }
        let draws = 20
        var elboDraws = [[Double]](repeating: [], count: count), iwDraws = [[Double]](repeating: [], count: count)
        let p = UnsafePointer(model.store.parameters.pointer)
        for t in 0..<draws {
            var rng = RandomStream(seed: 905, purpose: .sampling, step: UInt64(t))
            rng.fillNormal(ws.noise.pointer, count: count * k)
            _ = try ELBO.evaluate(model: model, parameters: p, rows: count, workspace: ws, gradients: nil, lossScale: 1)
            for r in 0..<count { elboDraws[r].append(Double(ws.rec[r] + ws.kl[r])) }
            _ = try ImportanceWeighted.evaluate(model: model, parameters: p, rows: count, samples: 1, workspace: ws,
                                                gradients: nil, lossScale: 1)
            for r in 0..<count { iwDraws[r].append(-Double(ws.bound[r])) }
        }
        func meanVariance(_ perExample: [[Double]]) -> Double {
            perExample.reduce(0.0) { total, values in
                let mean = values.reduce(0, +) / Double(values.count)
                return total + values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
            } / Double(perExample.count)
        }
        let sd = ((meanVariance(elboDraws) + meanVariance(iwDraws)) / Double(count)).squareRoot()
        XCTAssertGreaterThan(sd, 0)
        XCTAssertLessThan(abs(b[1]! - nelbo), 5 * sd, "IWAE-1 \(b[1]!) vs NELBO \(nelbo): tolerance 5 × \(sd)")
    }
}
