/// Failures reported by LAPACK and argument checks of the BLAS wrappers.
public enum LinearAlgebraError: Error, CustomStringConvertible, Equatable {
    /// `potrf` found the leading minor of this order not positive definite (LAPACK `info > 0`).
    case notPositiveDefinite(order: Int, leadingMinor: Int)
    /// LAPACK rejected an argument (`info < 0`): a programming error in the caller.
    case illegalArgument(routine: String, position: Int)
    /// The matrix of this order has a NaN or infinite entry: no jitter can make it factorizable.
    case nonFinite(order: Int)

    /// One line: what went wrong and what to do.
    public var description: String {
        switch self {
        case let .notPositiveDefinite(order, minor):
            return "matrix of order \(order) is not positive definite (leading minor \(minor) failed); "
                + "add jitter to the diagonal (e.g. a larger --jitter)"
        case let .illegalArgument(routine, position):
            return "\(routine): argument \(position) had an illegal value"
        case let .nonFinite(order):
            return "matrix of order \(order) has a non-finite (NaN or infinite) entry; lower the learning rate"
        }
    }
}
