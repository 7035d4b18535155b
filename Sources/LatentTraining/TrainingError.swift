/// Failures while training or evaluating, each naming the fix.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// `term` (Rec, KL, the bound, a factorization or gradient, or the test NELBO) is not finite at `step`; the
    /// parameters were not updated from it.
    case nonFinite(step: Int, term: String)
    /// A request that cannot be carried out (memory, resuming, run length); the message says why and what to do.
    case invalidOption(String)
    /// Every batch of the epoch was skipped as non-finite, so it has no metrics.
    case allBatchesSkipped(epoch: Int)
    /// The run was stopped at `step` on a signal; its checkpoint in `directory` resumes it.
    case interrupted(step: Int, directory: String)
    /// The ranks of a data-parallel job hold different parameters (a fault: they all apply the same sums).
    case ranksDiverged(step: Int)

    /// One line: what went wrong and what to do.
    public var description: String {
        switch self {
        case let .nonFinite(step, term):
            // A non-finite test evaluation is past what --on-nan skip-batch can skip.
            let skip = term.hasPrefix("test") ? "" : ", or pass --on-nan skip-batch"
            return "non-finite \(term) at step \(step); stopped before updating, checkpoints written so far are kept. "
                + "Lower --lr (e.g. 1e-4), raise --jitter for --posterior covariance\(skip)"
        case let .interrupted(step, directory):
            return "interrupted at step \(step); checkpoint saved, continue with `latent train --resume \(directory)`"
        case let .allBatchesSkipped(epoch):
            return "every batch of epoch \(epoch) was non-finite and skipped; lower --lr (e.g. 1e-4)"
        case let .ranksDiverged(step):
            return "the ranks' parameters differ at step \(step) (checksums disagree): a rank computed something else "
                + "or its memory is faulty; stopped, resume from the last checkpoint with `latent train --resume DIR`"
        case let .invalidOption(message):
            return message
        }
    }
}
