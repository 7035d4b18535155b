/// Failures while training or evaluating, each naming the fix.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case nonFinite(step: Int, term: String)
    case invalidOption(String)

    public var description: String {
        switch self {
        case let .nonFinite(step, term):
            return "non-finite \(term) at step \(step); the last good checkpoint is kept. "
                + "Lower --lr (e.g. 1e-4) or, for dense posteriors, raise --jitter"
        case let .invalidOption(message):
            return message
        }
    }
}
