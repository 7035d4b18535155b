/// How the training gradient treats log q(z|x) (MATH.md §10): the total derivative (`standard`), the pathwise part
/// only (`stl`, sticking the landing), or the doubly reparameterized IWAE encoder gradient (`dreg`). The loss value
/// is the same; only the gradient's variance differs.
public enum PathwiseEstimator: String, Codable, Sendable, CaseIterable {
    case standard, stl, dreg
}
