import Foundation
import LatentCore
import TestSupport
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// Every backward pass against central finite differences in Double (DESIGN.md § Conventions 4: relative error
/// below 1e-6), measured per parameter group with `scaledGradientError`.
final class GradientCheckTests: XCTestCase {

    func weightedSum(_ y: UnsafePointer<Double>, _ r: [Double]) -> Double {
        var s = 0.0
        for i in 0..<r.count { s += r[i] * y[i] }
        return s
    }

    // MARK: - Linear

    func testLinearGradients() {
        let store = ParameterStore<Double>()
        let layer = Linear(inputs: 3, outputs: 4, name: "l", store: store)
        store.allocate()
        let rows = 2
        let p = store.parameters.pointer
        for (i, v) in uniform(store.count, seed: 1).enumerated() { p[i] = v }
        let x = Buffer<Double>(uniform(rows * 3, seed: 2))
        let r = uniform(rows * 4, seed: 3)
        let y = Buffer<Double>(count: rows * 4)
        // f = Σ R ⊙ (x Wᵀ + b); the bias is added by the identity activation's fused pass.
        let f: () -> Double = {
            layer.forward(parameters: p, input: x.pointer, rows: rows, output: y.pointer)
            Activation.identity.forward(y.pointer, bias: p + layer.bias.offset, rows: rows, columns: 4)
            return self.weightedSum(y.pointer, r)
        }
        // Forward against the definition.
        _ = f()
        for row in 0..<rows {
            for o in 0..<4 {
                var s = p[layer.bias.offset + o]
                for i in 0..<3 { s += x[row * 3 + i] * p[layer.weight.offset + o * 3 + i] }
                XCTAssertEqual(y[row * 4 + o], s, accuracy: 1e-15)
            }
        }
        let g = Buffer<Double>(count: store.count), dy = Buffer<Double>(r), dx = Buffer<Double>(count: rows * 3)
        layer.backward(parameters: p, gradients: g.pointer, input: x.pointer, outputGradient: dy.pointer, rows: rows,
                       inputGradient: dx.pointer, accumulate: false)
        for view in [layer.weight, layer.bias] {
            assertGradient(view.range.map { g[$0] }, numericalGradient(of: f, at: p, indices: Array(view.range)), view.name)
        }
        assertGradient(dx.array, numericalGradient(of: f, at: x.pointer, indices: Array(0..<(rows * 3))), "input")

        // accumulate: parameter gradients add up, the input gradient is overwritten.
        let first = g.array, firstDx = dx.array
        layer.backward(parameters: p, gradients: g.pointer, input: x.pointer, outputGradient: dy.pointer, rows: rows,
                       inputGradient: dx.pointer, accumulate: true)
        for i in 0..<store.count { XCTAssertEqual(g[i], 2 * first[i], accuracy: 1e-15 * max(1, abs(first[i]))) }
        XCTAssertEqual(dx.array, firstDx)
        withExtendedLifetime(dy) {}
    }

    // MARK: - Activations

    func naiveActivation(_ a: Activation, _ v: Double) -> Double {
        switch a {
        case .elu: return v > 0 ? v : Foundation.exp(v) - 1
        case .relu: return max(v, 0)
        case .tanh: return Foundation.tanh(v)
        case .identity: return v
        }
    }

    func testActivationGradients() {
        let rows = 3, columns = 4, n = rows * columns
        for (k, activation) in Activation.allCases.enumerated() {
            // Pre-activations at least 0.05 away from ReLU's kink (and everything's origin).
            var pre = uniform(n, seed: UInt64(10 + k), -2, 2).map { abs($0) < 0.05 ? ($0 < 0 ? -0.05 : 0.05) + $0 : $0 }
            pre[0] = -1.5
            pre[1] = 1.5  // both branches present
            let bias = Buffer<Double>(uniform(columns, seed: UInt64(20 + k), -0.5, 0.5))
            let v = Buffer<Double>((0..<n).map { pre[$0] - bias[$0 % columns] })
            let r = uniform(n, seed: UInt64(30 + k))
            let y = Buffer<Double>(count: n)
            let f: () -> Double = {
                for i in 0..<n { y[i] = v[i] }
                activation.forward(y.pointer, bias: bias.pointer, rows: rows, columns: columns)
                return self.weightedSum(y.pointer, r)
            }
            _ = f()
            for i in 0..<n {
                XCTAssertEqual(y[i], naiveActivation(activation, v[i] + bias[i % columns]), accuracy: 1e-15,
                               "\(activation) forward at \(i)")
            }
            let g = Buffer<Double>(r)
            activation.backward(output: y.pointer, gradient: g.pointer, count: n)
            let numerical = numericalGradient(of: f, at: v.pointer, indices: Array(0..<n))
            assertGradient(g.array, numerical, "\(activation) input")
            // The same from two partial sums of the output gradient, added in the pass (`TeamStage.partialBackward`),
            // at the unperturbed outputs again.
            _ = f()
            let part = uniform(n, seed: UInt64(40 + k))
            let first = Buffer<Double>(part), second = Buffer<Double>((0..<n).map { r[$0] - part[$0] })
            activation.backward(output: y.pointer, gradient: first.pointer, adding: second.pointer, count: n)
            assertGradient(first.array, numerical, "\(activation) input from two partial sums")
            var dBias = [Double](repeating: 0, count: columns)
            for i in 0..<n { dBias[i % columns] += g[i] }
            assertGradient(dBias, numericalGradient(of: f, at: bias.pointer, indices: Array(0..<columns)), "\(activation) bias")
        }
    }

    func testActivationsStableAtLargeInputs() {
        let v: [Double] = [-1000, -100, 100, 1000]
        for activation in Activation.allCases {
            let y = Buffer<Double>(v), zero = Buffer<Double>(count: 4)
            activation.forward(y.pointer, bias: zero.pointer, rows: 1, columns: 4)
            for i in 0..<4 {
                XCTAssertEqual(y[i], naiveActivation(activation, v[i]), "\(activation)(\(v[i]))")
            }
            let yf = Buffer<Float>(v.map { Float($0) }), zf = Buffer<Float>(count: 4)
            activation.forward(yf.pointer, bias: zf.pointer, rows: 1, columns: 4)
            for i in 0..<4 {
                XCTAssertTrue(yf[i].isFinite, "Float \(activation)(\(v[i])) = \(yf[i])")
                XCTAssertEqual(Double(yf[i]), naiveActivation(activation, v[i]), accuracy: 1e-6 * max(1, abs(v[i])),
                               "Float \(activation)(\(v[i]))")
            }
        }
    }

    // MARK: - MLP

    func testMLPGradients() {
        for (k, activation) in Activation.allCases.enumerated() {
            let store = ParameterStore<Double>()
            let mlp = MLP(widths: [3, 5, 4, 2], activation: activation, name: "mlp", store: store)
            store.allocate()
            let rows = 3
            let p = store.parameters.pointer
            for (i, v) in uniform(store.count, seed: UInt64(40 + k)).enumerated() { p[i] = v }
            let x = Buffer<Double>(uniform(rows * 3, seed: UInt64(50 + k), -2, 2))
            let r = uniform(rows * 2, seed: UInt64(60 + k))
            let ws = MLPWorkspace<Double>(mlp, capacity: rows)
            let f: () -> Double = {
                mlp.forward(parameters: p, input: x.pointer, rows: rows, workspace: ws)
                return self.weightedSum(ws.output, r)
            }
            _ = f()
            for i in 0..<r.count { ws.outputGradient[i] = r[i] }
            let g = Buffer<Double>(count: store.count), dx = Buffer<Double>(count: rows * 3)
            mlp.backward(parameters: p, gradients: g.pointer, input: x.pointer, rows: rows, workspace: ws,
                         inputGradient: dx.pointer, accumulate: false)
            XCTAssertEqual(store.views.count, 6)
            for view in store.views {
                assertGradient(view.range.map { g[$0] }, numericalGradient(of: f, at: p, indices: Array(view.range)),
                               "\(activation) \(view.name)")
            }
            assertGradient(dx.array, numericalGradient(of: f, at: x.pointer, indices: Array(0..<(rows * 3))),
                           "\(activation) input")
        }
    }

    // MARK: - Bernoulli likelihood

    func testBernoulliLikelihoodGradientAndValues() {
        let rows = 3, columns = 5, n = rows * columns
        let a = Buffer<Double>(uniform(n, seed: 70, -4, 4))
        var targets = uniform(n, seed: 71, 0, 1).map { $0 < 0.5 ? 0.0 : 1.0 }
        targets[2 * columns + 1] = 0.3  // fractional targets are allowed by the formula
        let x = Buffer<Double>(targets)
        let scale = Buffer<Double>([0.5, 1, 2])
        let nll = Buffer<Double>(count: rows), terms = Buffer<Double>(count: columns), grad = Buffer<Double>(count: n)
        let f: () -> Double = {
            BernoulliLikelihood.evaluate(logits: a.pointer, targets: x.pointer, rows: rows, columns: columns,
                                         negativeLogLikelihood: nll.pointer, gradient: nil, scale: nil,
                                         terms: terms.pointer)
            return (0..<rows).reduce(0) { $0 + scale[$1] * nll[$1] }
        }
        _ = f()
        let withoutGradient = nll.array
        for r in 0..<rows {
            var expected = 0.0
            for d in 0..<columns {
                let s = 1 / (1 + Foundation.exp(-a[r * columns + d])), t = x[r * columns + d]
                expected -= t * Foundation.log(s) + (1 - t) * Foundation.log(1 - s)
            }
            XCTAssertEqual(nll[r], expected, accuracy: 1e-13 * expected, "row \(r)")
        }
        BernoulliLikelihood.evaluate(logits: a.pointer, targets: x.pointer, rows: rows, columns: columns,
                                     negativeLogLikelihood: nll.pointer, gradient: grad.pointer, scale: scale.pointer,
                                     terms: terms.pointer)
        XCTAssertEqual(nll.array, withoutGradient, "the gradient pass must report the same values")
        assertGradient(grad.array, numericalGradient(of: f, at: a.pointer, indices: Array(0..<n)), "logits")
    }

    func testBernoulliLikelihoodExtremeLogits() {
        // x = 1 with a = +1000 and x = 0 with a = −1000 cost nothing; the wrong way round costs |a|.
        let a: [Double] = [1000, -1000, 1000, -1000], x: [Double] = [1, 0, 0, 1]
        let expected: [Double] = [0, 0, 1000, 1000], expectedGradient: [Double] = [0, 0, 1, -1]
        for (i, ai) in a.enumerated() {
            // Buffers are classes: every one is bound to a name and kept alive across the calls that use its pointer.
            let nll = Buffer<Double>(count: 1), terms = Buffer<Double>(count: 1), g = Buffer<Double>(count: 1)
            let logit = Buffer([ai]), target = Buffer([x[i]]), one = Buffer([1.0])
            withExtendedLifetime((logit, target, one, terms)) {
                BernoulliLikelihood.evaluate(logits: logit.pointer, targets: target.pointer, rows: 1, columns: 1,
                                             negativeLogLikelihood: nll.pointer, gradient: g.pointer,
                                             scale: one.pointer, terms: terms.pointer)
            }
            XCTAssertEqual(nll[0], expected[i], "a = \(ai), x = \(x[i])")
            XCTAssertEqual(g[0], expectedGradient[i], "a = \(ai), x = \(x[i])")
            let nf = Buffer<Float>(count: 1), tf = Buffer<Float>(count: 1), gf = Buffer<Float>(count: 1)
            let logitF = Buffer([Float(ai)]), targetF = Buffer([Float(x[i])]), oneF = Buffer([Float(1)])
            withExtendedLifetime((logitF, targetF, oneF, tf)) {
                BernoulliLikelihood.evaluate(logits: logitF.pointer, targets: targetF.pointer, rows: 1, columns: 1,
                                             negativeLogLikelihood: nf.pointer, gradient: gf.pointer,
                                             scale: oneF.pointer, terms: tf.pointer)
            }
            XCTAssertEqual(Double(nf[0]), expected[i], accuracy: 1e-4, "Float a = \(ai), x = \(x[i])")
            XCTAssertEqual(Double(gf[0]), expectedGradient[i], accuracy: 1e-6, "Float a = \(ai), x = \(x[i])")
        }
    }

    /// The Float path (polynomial exp/log) agrees with the Double path to Float accuracy on realistic logits.
    func testBernoulliLikelihoodFloatMatchesDouble() {
        let rows = 2, columns = 784, n = rows * columns
        let a = uniform(n, seed: 72, -12, 12), x = uniform(n, seed: 73, 0, 1).map { $0 < 0.3 ? 1.0 : 0.0 }
        let nd = Buffer<Double>(count: rows), gd = Buffer<Double>(count: n)
        let nf = Buffer<Float>(count: rows), gf = Buffer<Float>(count: n)
        let ad = Buffer(a), xd = Buffer(x), sd = Buffer([1.0, 1.0]), td = Buffer<Double>(count: columns)
        let af = Buffer(a.map { Float($0) }), xf = Buffer(x.map { Float($0) }), sf = Buffer([Float(1), 1])
        let tf = Buffer<Float>(count: columns)
        withExtendedLifetime((ad, xd, sd, td, af, xf, sf, tf)) {
            BernoulliLikelihood.evaluate(logits: ad.pointer, targets: xd.pointer, rows: rows, columns: columns,
                                         negativeLogLikelihood: nd.pointer, gradient: gd.pointer, scale: sd.pointer,
                                         terms: td.pointer)
            BernoulliLikelihood.evaluate(logits: af.pointer, targets: xf.pointer, rows: rows, columns: columns,
                                         negativeLogLikelihood: nf.pointer, gradient: gf.pointer, scale: sf.pointer,
                                         terms: tf.pointer)
        }
        let u = Double(Float.ulpOfOne)
        for r in 0..<rows {
            // Each term is O(|a|) with a few roundings; the sum adds one rounding per term.
            let bound = (0..<columns).reduce(0.0) { $0 + 4 * u * (1 + abs(a[r * columns + $1])) }
            XCTAssertEqual(Double(nf[r]), nd[r], accuracy: bound, "row \(r)")
        }
        for i in 0..<n { XCTAssertEqual(Double(gf[i]), gd[i], accuracy: 4 * u, "gradient \(i)") }
    }

    // MARK: - Diagonal Gaussian posterior

    func testDiagonalGaussianGradients() {
        let k = 3, rows = 2, samples = 2
        let posterior = DiagonalGaussian<Double>(latent: k)
        XCTAssertEqual(posterior.parameterCount, 2 * k)
        let q = Buffer<Double>(uniform(rows * 2 * k, seed: 80))
        let noise = Buffer<Double>(normals(samples * rows * k, seed: 81))
        let r = uniform(samples * rows * k, seed: 82)
        let c = Buffer<Double>(uniform(rows, seed: 83))  // coefficient of Σ log L_ii per row
        let w = 0.7
        let scratch = Buffer<Double>(count: rows * posterior.scratchPerRow)
        let logDet = Buffer<Double>(count: rows), kl = Buffer<Double>(count: rows)
        let z = Buffer<Double>(count: samples * rows * k)
        // f = Σ R ⊙ z + Σ_r c_r log det_r + w Σ_r KL_r.
        let f: () -> Double = {
            try! posterior.prepare(parameters: q.pointer, rows: rows, scratch: scratch.pointer,
                                   logDeterminant: logDet.pointer)
            posterior.sample(parameters: q.pointer, scratch: scratch.pointer, noise: noise.pointer, samples: samples,
                             rows: rows, z: z.pointer)
            posterior.klToStandardNormal(parameters: q.pointer, scratch: scratch.pointer,
                                         logDeterminant: logDet.pointer, rows: rows, kl: kl.pointer)
            var total = self.weightedSum(z.pointer, r)
            for row in 0..<rows { total += c[row] * logDet[row] + w * kl[row] }
            return total
        }
        _ = f()
        // Forward values against MATH.md §2.
        for row in 0..<rows {
            var expectedKL = 0.0, expectedLogDet = 0.0
            for i in 0..<k {
                let mu = q[row * 2 * k + i], s = q[row * 2 * k + k + i]
                expectedKL += 0.5 * (Foundation.exp(s) + mu * mu - 1 - s)
                expectedLogDet += s / 2
                for m in 0..<samples {
                    let idx = (m * rows + row) * k + i
                    XCTAssertEqual(z[idx], mu + Foundation.exp(s / 2) * noise[idx], accuracy: 1e-15)
                }
            }
            XCTAssertEqual(kl[row], expectedKL, accuracy: 1e-14)
            XCTAssertEqual(logDet[row], expectedLogDet, accuracy: 1e-15)
        }
        let dq = Buffer<Double>([Double](repeating: .nan, count: rows * 2 * k))  // must be overwritten
        let dz = Buffer(r)
        withExtendedLifetime(dz) {
            posterior.backward(parameters: q.pointer, scratch: scratch.pointer, noise: noise.pointer, samples: samples,
                               rows: rows, dz: dz.pointer, dLogDeterminant: c.pointer, klWeight: w,
                               dParameters: dq.pointer)
        }
        let mus = (0..<rows).flatMap { row in (0..<k).map { row * 2 * k + $0 } }
        let logVariances = (0..<rows).flatMap { row in (0..<k).map { row * 2 * k + k + $0 } }
        assertGradient(mus.map { dq[$0] }, numericalGradient(of: f, at: q.pointer, indices: mus), "μ")
        assertGradient(logVariances.map { dq[$0] }, numericalGradient(of: f, at: q.pointer, indices: logVariances), "s")
    }

    func testDiagonalGaussianLogDensity() throws {
        let k = 3, rows = 2
        let posterior = DiagonalGaussian<Double>(latent: k)
        let q = Buffer<Double>(uniform(rows * 2 * k, seed: 84))
        let noise = Buffer<Double>(normals(rows * k, seed: 85))
        let scratch = Buffer<Double>(count: rows * k), logDet = Buffer<Double>(count: rows)
        let z = Buffer<Double>(count: rows * k), density = Buffer<Double>(count: rows)
        try posterior.prepare(parameters: q.pointer, rows: rows, scratch: scratch.pointer, logDeterminant: logDet.pointer)
        posterior.sample(parameters: q.pointer, scratch: scratch.pointer, noise: noise.pointer, samples: 1, rows: rows,
                         z: z.pointer)
        posterior.logDensity(parameters: q.pointer, scratch: scratch.pointer, logDeterminant: logDet.pointer,
                             z: z.pointer, rows: rows, out: density.pointer)
        for row in 0..<rows {
            // Independent: Σ log N(z_i; μ_i, e^{s_i}).
            var expected = 0.0
            for i in 0..<k {
                let mu = q[row * 2 * k + i], variance = Foundation.exp(q[row * 2 * k + k + i]), zi = z[row * k + i]
                expected += -0.5 * Foundation.log(2 * Double.pi * variance) - (zi - mu) * (zi - mu) / (2 * variance)
            }
            XCTAssertEqual(density[row], expected, accuracy: 1e-13)
            let own = posterior.logDensityOfOwnSample(noise: noise.pointer + row * k, logDeterminant: logDet[row])
            XCTAssertEqual(own, expected, accuracy: 1e-13)
        }
    }

    // MARK: - Whole ELBO

    func checkELBO(_ configuration: ModelConfiguration, rows: Int, seed: UInt64) throws {
        let model = VariationalAutoencoder<Double>(configuration)
        model.initialize(seed: seed)
        let p = model.store.parameters.pointer
        // Larger weights than the default initialization so that every group carries a clear signal.
        for i in 0..<model.parameterCount { p[i] *= 2 }
        let ws = StepWorkspace(model: model, capacity: rows)
        let d = configuration.inputs, k = configuration.latent
        for (i, v) in uniform(rows * d, seed: seed + 1, 0, 1).enumerated() { ws.x[i] = v < 0.4 ? 1 : 0 }
        for (i, v) in normals(rows * k, seed: seed + 2).enumerated() { ws.noise[i] = v }
        let lossScale = 1 / Double(rows)
        let f: () -> Double = {
            lossScale * (try! ELBO.evaluate(model: model, parameters: p, rows: rows, workspace: ws, gradients: nil,
                                            lossScale: lossScale)).nelbo
        }
        let gradient = Buffer<Double>([Double](repeating: .nan, count: model.parameterCount))
        let sums = try ELBO.evaluate(model: model, parameters: p, rows: rows, workspace: ws, gradients: gradient.pointer,
                                     lossScale: lossScale)
        XCTAssertEqual(sums.examples, rows)
        XCTAssertEqual(sums.nelbo * lossScale, f(), "the gradient pass must report the same objective")
        XCTAssertTrue(sums.rec > 0 && sums.kl > 0)
        let names = model.store.views.map(\.name)
        XCTAssertEqual(names.count, 2 * (configuration.hidden.count + 1) * 2)
        for view in model.store.views {
            assertGradient(view.range.map { gradient[$0] }, numericalGradient(of: f, at: p, indices: Array(view.range)),
                           "\(configuration.activation) \(view.name)")
        }
        // accumulate: the same gradient is added to what the buffer holds.
        let first = gradient.array
        let offset = uniform(model.parameterCount, seed: seed + 3)
        for i in 0..<model.parameterCount { gradient[i] = offset[i] }
        _ = try ELBO.evaluate(model: model, parameters: p, rows: rows, workspace: ws, gradients: gradient.pointer,
                              lossScale: lossScale, accumulate: true)
        for i in 0..<model.parameterCount {
            XCTAssertEqual(gradient[i], offset[i] + first[i], accuracy: 1e-14 * max(1, abs(first[i])), "accumulate \(i)")
        }
    }

    func testELBOGradientEveryParameterGroup() throws {
        try checkELBO(ModelConfiguration(inputs: 6, hidden: [5, 4], latent: 2, activation: .elu), rows: 3, seed: 90)
    }

    func testELBOGradientTanhOneHiddenLayer() throws {
        try checkELBO(ModelConfiguration(inputs: 5, hidden: [4], latent: 3, activation: .tanh), rows: 2, seed: 95)
    }

    // MARK: - Adam

    func testAdamTwoStepsByHand() {
        let adam = Adam<Double>(count: 3, learningRate: 0.01)
        let p = Buffer<Double>([0.5, -1.0, 2.0])
        let g1 = Buffer<Double>([0.1, -0.2, 0.0]), g2 = Buffer<Double>([0.3, 0.1, -0.5])
        adam.beginStep()
        adam.update(parameters: p.pointer, gradients: g1.pointer, range: 0..<3)
        // Kingma & Ba by hand (40-digit decimal arithmetic): m̂ = g, v̂ = g², p −= lr·g/(|g| + ε).
        XCTAssertEqual(p[0], 0.490_000_000_999_999_9, accuracy: 1e-15)
        XCTAssertEqual(p[1], -0.990_000_000_499_999_97, accuracy: 1e-15)
        XCTAssertEqual(p[2], 2.0)
        assertElementsEqual(adam.firstMoment.array, [0.01, -0.02, 0], accuracy: 1e-17)
        assertElementsEqual(adam.secondMoment.array, [1e-5, 4e-5, 0], accuracy: 1e-19)
        adam.beginStep()
        adam.update(parameters: p.pointer, gradients: g2.pointer, range: 0..<3)
        XCTAssertEqual(adam.step, 2)
        XCTAssertEqual(p[0], 0.480_822_190_220_558_925_6, accuracy: 1e-14)
        XCTAssertEqual(p[1], -0.987_336_630_271_867_557_9, accuracy: 1e-14)
        XCTAssertEqual(p[2], 2.007_441_368_025_248_827, accuracy: 1e-14)
        assertElementsEqual(adam.firstMoment.array, [0.039, -0.008, -0.05], accuracy: 1e-16)
        assertElementsEqual(adam.secondMoment.array, [9.999e-5, 4.996e-5, 2.5e-4], accuracy: 1e-18)
    }

    /// Reference Adam in Double for `steps` steps of the given gradients.
    func referenceAdam(_ p0: [Double], _ gradients: [[Double]], lr: Double) -> [Double] {
        var p = p0, m = [Double](repeating: 0, count: p0.count), v = m
        for (t, g) in gradients.enumerated() {
            let step = Double(t + 1)
            for i in 0..<p.count {
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                let mHat = m[i] / (1 - Foundation.pow(0.9, step)), vHat = v[i] / (1 - Foundation.pow(0.999, step))
                p[i] -= lr * mHat / (vHat.squareRoot() + 1e-8)
            }
        }
        return p
    }

    func testAdamVectorPathRangesFusedSumAndFloat() {
        let n = 19  // two 8-lane blocks and a scalar tail
        let p0 = uniform(n, seed: 100)
        let grads = (0..<3).map { uniform(n, seed: 101 + UInt64($0)) }
        let expected = referenceAdam(p0, grads, lr: 0.003)
        // Double, split into ranges that cut through the vector blocks, with the gradient given as two halves.
        let adam = Adam<Double>(count: n, learningRate: 0.003)
        let p = Buffer<Double>(p0)
        for g in grads {
            adam.beginStep()
            let a = Buffer<Double>(g.map { $0 * 0.25 }), b = Buffer<Double>(g.map { $0 * 0.75 })
            for range in [0..<5, 5..<14, 14..<19] {
                adam.update(parameters: p.pointer, gradients: a.pointer, plus: b.pointer, range: range,
                            zeroingGradients: true)
            }
            XCTAssertEqual(a.array, [Double](repeating: 0, count: n), "zeroingGradients must clear the first buffer")
            XCTAssertEqual(b.array, [Double](repeating: 0, count: n), "zeroingGradients must clear the second buffer")
        }
        for i in 0..<n { XCTAssertEqual(p[i], expected[i], accuracy: 1e-13, "Double parameter \(i)") }
        // Float through the polynomial square root: within Float rounding of the Double reference.
        let adamF = Adam<Float>(count: n, learningRate: 0.003)
        let pf = Buffer<Float>(p0.map { Float($0) })
        for g in grads {
            adamF.beginStep()
            let gf = Buffer<Float>(g.map { Float($0) })
            adamF.update(parameters: pf.pointer, gradients: gf.pointer, range: 0..<n)
            XCTAssertEqual(gf.array, g.map { Float($0) }, "without zeroingGradients the gradient is left alone")
        }
        // Each step moves a parameter by at most lr·(1 + relative error); errors are O(u) of |p| plus O(1e-6) of lr.
        for i in 0..<n {
            XCTAssertEqual(Double(pf[i]), expected[i], accuracy: 4 * Double(Float.ulpOfOne) * abs(expected[i]) + 3 * 0.003 * 1e-5,
                           "Float parameter \(i)")
        }
    }

    func testIntegerPower() {
        for (x, n) in [(0.9, 0.0), (0.9, 1.0), (0.999, 17.0), (0.5, 64.0), (0.999, 100_000.0)] {
            // Repeated squaring doubles the relative error with each squaring: at most about n·u in total.
            let exact = Foundation.pow(x, n)
            XCTAssertEqual(integerPower(x, n), exact, accuracy: max(n, 2) * Double.ulpOfOne * exact, "\(x)^\(n)")
        }
    }
}

/// Element-wise `XCTAssertEqual(_:_:accuracy:)` for arrays.
func assertElementsEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath,
                         line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() {
        XCTAssertEqual(x, y, accuracy: accuracy, "element \(i)", file: file, line: line)
    }
}
