import Foundation

/// Why a run directory cannot be written or resumed as asked, and what to do about it.
package enum RunDirectoryError: Error, CustomStringConvertible, Equatable {
    /// Another process holds the directory's lock; `holder` names it ("pid 1234: latent train …"), or is empty when
    /// the lock file does not say.
    case inUse(directory: String, holder: String, resuming: Bool)
    /// Line `line` of the metrics file `path` is not an epoch's metrics, and it records one of the `completedEpochs`
    /// epochs that the checkpoint holds, so trimming it would lose them.
    case unreadableMetrics(path: String, line: Int, completedEpochs: Int)
    /// A stop (SIGINT, SIGTERM) arrived before a new run's first step, so the run in `directory` was not replaced.
    case stoppedBeforeStart(directory: String)

    /// One line: what went wrong and what to do.
    package var description: String {
        switch self {
        case let .inUse(directory, holder, resuming):
            let who = holder.isEmpty ? "another process" : holder
            return "run directory \(directory) is in use by \(who); wait for it to finish"
                + (resuming ? " before resuming" : ", or choose another --out")
        case let .unreadableMetrics(path, line, completedEpochs):
            return "line \(line) of \(path) is not an epoch's metrics, and it may be one of the \(completedEpochs) "
                + "epoch(s) the checkpoint holds, so it is not dropped; fix line \(line), or delete it (losing that "
                + "epoch's metrics), and resume again"
        case let .stoppedBeforeStart(directory):
            return "stopped before the first step; nothing in \(directory) was replaced"
        }
    }
}

extension RunDirectoryError: LocalizedError {
    /// The error's one-line message: what is wrong and what to do.
    package var errorDescription: String? { description }
}
