import Foundation

// Each error's message as Foundation's `localizedDescription` (otherwise "The operation could not be completed").

extension CheckpointError: LocalizedError {
    /// The error's one-line message: what is wrong and what to do.
    public var errorDescription: String? { description }
}

extension TrainingError: LocalizedError {
    /// The error's one-line message: what is wrong and what to do.
    public var errorDescription: String? { description }
}

extension ReportError: LocalizedError {
    /// The error's one-line message: what is wrong and what to do.
    public var errorDescription: String? { description }
}
