import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One writer per run directory: an exclusive `flock` on `DIR/.lock`, which records the holder's pid and command.
/// The kernel drops the lock when the process ends, however it ends, so a killed run never blocks its resume.
package final class RunLock {
    /// The lock file's name inside a run directory (left in place: removing it would race with a new holder).
    package static let fileName = ".lock"
    /// The directory held.
    package let directory: String
    /// Set when the directory's file system cannot lock files (some network ones): the run goes on unguarded, and
    /// this note says so.
    package let unenforced: String?
    private let descriptor: Int32

    /// The lock file of the run directory `directory`.
    package static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent(fileName)
    }

    /// Takes the lock of the existing directory `directory` at once, or throws ``RunDirectoryError/inUse`` naming the
    /// process that holds it (never waits); `resuming` only words the advice.
    package init(directory: String, resuming: Bool = false) throws {
        let path = RunLock.path(in: directory)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno))) }
        var unenforced: String?
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let failure = errno
            guard [ENOLCK, EOPNOTSUPP, EINVAL].contains(failure) else {
                close(fd)  // another descriptor's lock is not ours to release: closing this one leaves it alone
                guard failure == EWOULDBLOCK else {
                    throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(failure)))
                }
                throw RunDirectoryError.inUse(directory: directory, holder: RunLock.holder(at: path), resuming: resuming)
            }
            unenforced = "note: the file system of \(directory) cannot lock files (\(String(cString: strerror(failure)))); "
                + "nothing stops another latent process from writing into it at the same time"
        }
        self.directory = directory
        self.unenforced = unenforced
        descriptor = fd
        let record = Array("\(getpid())\n\(RunLock.commandLine)\n".utf8)
        // The record only informs a refused process; failing to write it does not make the lock less held.
        if ftruncate(fd, 0) == 0 { _ = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
    }

    deinit { close(descriptor) }

    /// Creates `directory` (and its parents) when missing, then takes its lock.
    package static func claim(creating directory: String) throws -> RunLock {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.unwritable(path: directory, reason: "cannot create the directory")
        }
        return try RunLock(directory: directory)
    }

    /// This process's command line, on one line, shortened to what a message can carry.
    static var commandLine: String {
        var words = CommandLine.arguments
        if let first = words.first { words[0] = (first as NSString).lastPathComponent }
        let line = words.joined(separator: " ").map { $0.isNewline ? " " : $0 }
        return line.count > 120 ? String(line.prefix(119)) + "…" : String(line)
    }

    /// "pid N: command" from the holder's record; the holder writes it just after locking, so an empty file is
    /// read again for a moment before the holder goes unnamed.
    static func holder(at path: String) -> String {
        for attempt in 0..<20 {
            if attempt > 0 { usleep(10_000) }
            guard let data = FileManager.default.contents(atPath: path) else { return "" }
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            guard let pid = lines.first.flatMap({ Int32($0) }) else { continue }
            let command = lines.count > 1 ? String(lines[1]) : ""
            return "pid \(pid)" + (command.isEmpty ? "" : " (\(command))")
        }
        return ""
    }
}
