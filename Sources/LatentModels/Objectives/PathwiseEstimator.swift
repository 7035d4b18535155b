/// How the training gradient treats log q(z|x) (MATH.md §10): the total derivative (`standard`), the pathwise part
/// only (`stl`, sticking the landing), or the doubly reparameterized IWAE encoder gradient (`dreg`). The loss value
/// is the same; only the gradient's variance differs.
public enum PathwiseEstimator: String, Codable, Sendable, CaseIterable {
    /// The gradient of the objective as it is written (MATH.md §3–§4).
    case standard
    /// Sticking the landing: log q's dependence on the posterior's parameters stopped (MATH.md §10).
    case stl
    /// Doubly reparameterized (IWAE): the encoder's gradient from the squared normalized weights (MATH.md §10).
    case dreg
}
