import Foundation
import LatentCore
@testable import LatentModels

/// A covariance reference vector (Fixtures/*covariance*.json, whose encoder emits a full k×k A) re-expressed for the
/// lower-triangular family of MATH.md §2.
///
/// Σ = AAᵀ + δI depends on A only through AAᵀ, which A' = chol(AAᵀ) (lower triangular, positive diagonal) shares. The
/// case's last encoder layer is replaced by the least-norm one that emits (μ, log diag A', A' below the diagonal)
/// exactly for the case's examples, so everything that depends only on μ and Σ (loss, Rec, KL, z, L, log-weights,
/// bounds, the decoder's gradients) must match the vector as it is. The vector's per-example gradient Ā of A gives
/// Σ's gradient G = Ā A⁻¹ (Ā = G A with G symmetric); the new head's expected gradient is G A' below and on the
/// diagonal, the diagonal times A'_ii (A'_ii = e^d). The hidden encoder layers, whose gradients depend on the
/// replaced layer, are left to the central-difference checks (`uncheckedRanges`).
struct CovarianceReferenceCase {
    let model: VariationalAutoencoder<Double>
    /// The expected gradient in the model's flat layout (NaN in `uncheckedRanges`).
    let expectedGradient: [Double]
    let uncheckedRanges: [Range<Int>]
    /// The largest |G − Gᵀ| relative to max |G| over the examples: whether the vector's Ā factors through Σ.
    let asymmetry: Double
    /// The largest residual of recovering the per-example output gradients from the vector's summed ones.
    let inconsistency: Double

    init(_ v: ReferenceVector) {
        let k = v.latent, batch = v.batch
        let specs = (v.json["encoder"] as! [[String: Any]]), decoderSpecs = (v.json["decoder"] as! [[String: Any]])
        model = VariationalAutoencoder<Double>(v.configuration)
        let p = model.store.parameters.pointer
        let layers = Array(model.encoder.layers.dropLast()) + model.decoder.layers
        for (layer, spec) in zip(layers, Array(specs.dropLast()) + decoderSpecs) {
            for (view, key) in [(layer.weight, "weight"), (layer.bias, "bias")] {
                for (i, x) in flatten(spec[key]!).enumerated() { p[view.offset + i] = x }
            }
        }
        // The last hidden activations of the case's examples, by hand (ELU).
        var h = (0..<batch).map { r in Array(v.x[(r * v.inputs)..<((r + 1) * v.inputs)]) }
        for spec in specs.dropLast() {
            let w = flatten(spec["weight"]!), b = flatten(spec["bias"]!)
            h = h.map { x in
                (0..<b.count).map { o in
                    let y = (0..<x.count).reduce(b[o]) { $0 + w[o * x.count + $1] * x[$1] }
                    return y > 0 ? y : Foundation.exp(y) - 1
                }
            }
        }
        let width = h[0].count
        let design = h.map { $0 + [1] }  // B × (width + 1): [h_r, 1]
        var gram = [Double](repeating: 0, count: batch * batch)
        for r in 0..<batch { for s in 0..<batch { gram[r * batch + s] = zip(design[r], design[s]).reduce(0) { $0 + $1.0 * $1.1 } } }

        // The vector's head: outputs, per-example output gradients recovered from dW = Σ_r g_r h_rᵀ, db = Σ_r g_r.
        let last = specs.last!
        let oldWeight = flatten(last["weight"]!), oldBias = flatten(last["bias"]!)
        let oldDWeight = flatten(last["d_weight"]!), oldDBias = flatten(last["d_bias"]!)
        let oldOutputs = oldBias.count
        var outputs = [[Double]](), gradients = [[Double]](repeating: [], count: batch)
        for r in 0..<batch {
            outputs.append((0..<oldOutputs).map { o in
                (0..<width).reduce(oldBias[o]) { $0 + oldWeight[o * width + $1] * h[r][$1] }
            })
        }
        var worstResidual = 0.0
        for o in 0..<oldOutputs {
            let y = (0..<width).map { oldDWeight[o * width + $0] } + [oldDBias[o]]
            let my = (0..<batch).map { r in zip(design[r], y).reduce(0) { $0 + $1.0 * $1.1 } }
            let g = bruteForceSolve(gram, my, order: batch).solution
            for r in 0..<batch { gradients[r].append(g[r]) }
            for c in 0...width {
                let fitted = (0..<batch).reduce(0) { $0 + g[$1] * design[$1][c] }
                worstResidual = max(worstResidual, abs(fitted - y[c]) / max(1e-300, y.map(abs).max()!))
            }
        }
        inconsistency = worstResidual

        // Per example: A' = chol(AAᵀ), the new head's outputs and their expected gradients.
        let newOutputs = 2 * k + k * (k - 1) / 2
        var targets = [[Double]](), newGradients = [[Double]](), worstAsymmetry = 0.0
        for r in 0..<batch {
            let mu = Array(outputs[r][0..<k]), a = Array(outputs[r][k...])
            var aat = [Double](repeating: 0, count: k * k)
            for i in 0..<k { for j in 0..<k { for t in 0..<k { aat[i * k + j] += a[i * k + t] * a[j * k + t] } } }
            let lower = choleskyByHand(aat, order: k)
            // G = Ā A⁻¹, from (AAᵀ) Gᵀ = A Āᵀ (AAᵀ is SPD).
            let aBar = Array(gradients[r][k...])
            var aaBar = [Double](repeating: 0, count: k * k)
            for i in 0..<k { for j in 0..<k { for t in 0..<k { aaBar[i * k + j] += a[i * k + t] * aBar[j * k + t] } } }
            let g = transposed(bruteForceSolve(aat, aaBar, order: k).solution, k)
            let scale = g.map(abs).max()!
            for i in 0..<k { for j in 0..<k { worstAsymmetry = max(worstAsymmetry, abs(g[i * k + j] - g[j * k + i]) / scale) } }
            var lowerBar = [Double](repeating: 0, count: k * k)
            for i in 0..<k { for j in 0..<k { for t in 0..<k { lowerBar[i * k + j] += g[i * k + t] * lower[t * k + j] } } }
            var target = mu + (0..<k).map { Foundation.log(lower[$0 * k + $0]) }
            var gradient = Array(gradients[r][0..<k]) + (0..<k).map { lowerBar[$0 * k + $0] * lower[$0 * k + $0] }
            for i in 0..<k {
                for j in 0..<i {
                    target.append(lower[i * k + j])
                    gradient.append(lowerBar[i * k + j])
                }
            }
            targets.append(target)
            newGradients.append(gradient)
        }
        asymmetry = worstAsymmetry

        // The new head: μ's rows as in the vector, the rest the least-norm weights that emit the targets exactly.
        let head = model.encoder.layers.last!
        precondition(head.outputs == newOutputs && head.inputs == width, "the head's shape")
        for o in 0..<newOutputs {
            if o < k {
                for c in 0..<width { p[head.weight.offset + o * width + c] = oldWeight[o * width + c] }
                p[head.bias.offset + o] = oldBias[o]
                continue
            }
            let coefficients = bruteForceSolve(gram, (0..<batch).map { targets[$0][o] }, order: batch).solution
            for c in 0..<width {
                p[head.weight.offset + o * width + c] = (0..<batch).reduce(0) { $0 + coefficients[$1] * design[$1][c] }
            }
            p[head.bias.offset + o] = coefficients.reduce(0, +)
        }

        // The expected gradient: the decoder's from the vector, the head's from the new per-example gradients.
        var expected = [Double](repeating: .nan, count: model.parameterCount)
        for (layer, spec) in zip(model.decoder.layers, decoderSpecs) {
            for (view, key) in [(layer.weight, "d_weight"), (layer.bias, "d_bias")] {
                for (i, x) in flatten(spec[key]!).enumerated() { expected[view.offset + i] = x }
            }
        }
        for o in 0..<newOutputs {
            for c in 0..<width {
                expected[head.weight.offset + o * width + c] = (0..<batch).reduce(0) { $0 + newGradients[$1][o] * h[$1][c] }
            }
            expected[head.bias.offset + o] = (0..<batch).reduce(0) { $0 + newGradients[$1][o] }
        }
        expectedGradient = expected
        uncheckedRanges = model.encoder.layers.dropLast().flatMap { [$0.weight.range, $0.bias.range] }
    }
}

/// The transpose of a row-major k×k matrix.
private func transposed(_ a: [Double], _ k: Int) -> [Double] {
    (0..<(k * k)).map { a[($0 % k) * k + $0 / k] }
}

/// Textbook Cholesky of an SPD row-major matrix (lower factor).
private func choleskyByHand(_ a: [Double], order n: Int) -> [Double] {
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0...i {
            var s = a[i * n + j]
            for t in 0..<j { s -= l[i * n + t] * l[j * n + t] }
            l[i * n + j] = i == j ? s.squareRoot() : s / l[j * n + j]
        }
    }
    return l
}
