import LatentCore

/// The decoder's observation model p(x|z) on the decoder's outputs a (one per pixel), MATH.md §1 and §9.
///
/// A likelihood may own parameters of its own in the model's store (after the layers and the prior's); their
/// gradients go into the model's flat gradient buffer. Adding one is a new conforming type and a case of
/// `LikelihoodKind`.
@usableFromInline package protocol Likelihood: Sendable {
    /// `negativeLogLikelihood[r]` = −log p(x_r | a_r) per row; with `gradient`, also
    /// `scale[r] · d(−log p)/da` for every output, in the same pass. `terms` is one row of scratch.
    func evaluate<T: BLASScalar>(
        parameters p: UnsafePointer<T>, outputs a: UnsafePointer<T>, targets x: UnsafePointer<T>, rows: Int,
        columns: Int, negativeLogLikelihood out: UnsafeMutablePointer<T>, gradient: UnsafeMutablePointer<T>?,
        scale: UnsafePointer<T>?, terms: UnsafeMutablePointer<T>)

    /// Adds Σ_r scale[r] · d(−log p(x_r | a_r))/dθ for the likelihood's own parameters θ into `g`.
    func accumulateParameterGradients<T: BLASScalar>(
        parameters p: UnsafePointer<T>, outputs a: UnsafePointer<T>, targets x: UnsafePointer<T>, rows: Int,
        columns: Int, scale: UnsafePointer<T>, gradients g: UnsafeMutablePointer<T>)

    /// The likelihood's own parameters in the store (empty when it has none).
    var parameters: Range<Int> { get }
}

/// The registered likelihoods, as `latent train --likelihood` names them.
public enum LikelihoodKind: String, Codable, Sendable, CaseIterable {
    /// Binary pixels, each Bernoulli with probability sigmoid(a_d) of the decoder's logit (MATH.md §1).
    case bernoulli
    /// Intensities in [0, 1], Gaussian around sigmoid(a_d) with a learned log-variance per pixel (MATH.md §9).
    case gaussian

    /// The likelihood of this kind for `inputs` pixels, its parameters reserved in `store`.
    func make<T: BLASScalar>(inputs: Int, store: ParameterStore<T>) -> any Likelihood {
        switch self {
        case .bernoulli: BernoulliLikelihood()
        case .gaussian: GaussianLikelihood(inputs: inputs, store: store)
        }
    }
}
