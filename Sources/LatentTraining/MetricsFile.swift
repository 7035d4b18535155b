import Foundation
import LatentCore
#if canImport(Glibc)
import Glibc
#endif

/// A run's `metrics.jsonl`: one JSON line per completed epoch, appended before that epoch's checkpoint, so a crash
/// between the two leaves lines past the checkpoint, which a resume trims (and says so); it never drops another.
package struct MetricsFile {
    /// The file's path.
    package let path: String

    /// The metrics file of the run directory `directory`.
    package init(directory: String) { path = EpochMetrics.path(in: directory) }

    /// What a resume keeps of the file, read before the run is committed to start and applied by ``keep(_:)``.
    package struct Kept {
        /// The epochs' metrics, in the file's order.
        package var history: [EpochMetrics] = []
        /// The kept lines, each ending in a newline.
        var text = ""
        /// Whether `text` differs from the file, which must then be replaced before the next line is appended.
        var changed = false
        /// What was trimmed or is missing, one line each for stderr.
        package var notes: [String] = []
    }

    /// The lines of epochs up to `completedEpochs`, the checkpoint's. Lines past it are dropped with a note; a line
    /// that cannot be read and may record one of those epochs (it does not come after the line of the checkpoint's
    /// last epoch) is an error naming it; a missing file is recreated with a note.
    package func kept(completedEpochs completed: Int) throws -> Kept {
        var kept = Kept()
        guard let data = FileManager.default.contents(atPath: path) else {
            guard !FileManager.default.fileExists(atPath: path) else {
                throw CheckpointError.unwritable(path: path, reason: "cannot be read")
            }
            kept.changed = true
            kept.notes.append("note: \(path) was missing; it is recreated"
                + (completed > 0 ? ", without the metrics of the \(completed) epoch(s) the checkpoint holds" : ""))
            return kept
        }
        let original = String(decoding: data, as: UTF8.self)
        let decoder = JSONDecoder()
        var pastCheckpoint = completed == 0
        var dropped = [Int]()
        for (index, line) in original.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy(\.isWhitespace) {
            if let metrics = try? decoder.decode(EpochMetrics.self, from: Data(line.utf8)) {
                if metrics.epoch > completed {
                    dropped.append(index + 1)
                    pastCheckpoint = true
                    continue
                }
                kept.text += line + "\n"
                kept.history.append(metrics)
                if metrics.epoch == completed { pastCheckpoint = true }
            } else if pastCheckpoint {
                dropped.append(index + 1)
            } else {
                throw RunDirectoryError.unreadableMetrics(path: path, line: index + 1, completedEpochs: completed)
            }
        }
        kept.changed = kept.text != original
        if !dropped.isEmpty {
            let lines = dropped.count == 1 ? "line \(dropped[0])" : "lines \(dropped.map(String.init).joined(separator: ", "))"
            kept.notes.append("note: dropped \(lines) of \(path), past the checkpoint's epoch \(completed) (written "
                + "after it, e.g. before a crash); the resumed run writes those epochs again")
        }
        if kept.history.count < completed {
            kept.notes.append("note: \(path) holds the metrics of \(kept.history.count) of the \(completed) epoch(s) "
                + "the checkpoint holds; the others are not written again")
        }
        return kept
    }

    /// Replaces the file with what a resume keeps, at once (`AtomicFile`), when that differs from it.
    package func keep(_ kept: Kept) throws {
        guard kept.changed else { return }
        try replace(with: kept.text)
    }

    /// An empty file, for a new run.
    package func create() throws { try replace(with: "") }

    /// Appends one epoch's line; a failed write is cut off again, so the file never ends in half a line.
    package func append(_ metrics: EpochMetrics) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let line = Array(try encoder.encode(metrics)) + [0x0A]
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        var written = 0
        while written < line.count {
            let n = line.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                if size >= 0 { _ = ftruncate(fd, size) }
                throw CheckpointError.unwritable(path: path, reason: reason)
            }
            written += n
        }
    }

    private func replace(with text: String) throws {
        do {
            try AtomicFile.write(Array(text.utf8), to: path)
        } catch {
            throw CheckpointError.unwritable(path: error.path, reason: error.reason)
        }
    }
}
