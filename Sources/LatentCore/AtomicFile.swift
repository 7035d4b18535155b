#if canImport(Glibc)
import Glibc
#endif

/// A file that cannot be written: the path and the system's reason.
@usableFromInline package struct FileWriteError: Error, CustomStringConvertible, Equatable {
    @usableFromInline package let path: String
    @usableFromInline package let reason: String
    @usableFromInline package var description: String { "cannot write \(path): \(reason)" }
}

/// Replaces a file all at once: the bytes go to a temporary file beside it (`path.tmp`, replacing a stale one), which
/// is flushed to disk (fsync) and renamed over the destination, and the directory is flushed too. A crash or a full
/// disk leaves the old file or the new one, never a mix; a reader never sees a partial file. A failure's reason says
/// when a previous file at the path was kept.
@usableFromInline package enum AtomicFile {
    @usableFromInline package static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws(FileWriteError) {
        let temporary = path + ".tmp"
        var status = stat()
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let kept = lstat(path, &status) == 0 ? " (the previous \(name) was kept)" : ""
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno)) + kept) }
        var written = 0
        var ok = true
        while written < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n <= 0 { ok = false; break }
            written += n
        }
        if ok { ok = fsync(fd) == 0 }
        let reason = String(cString: strerror(errno))
        close(fd)
        guard ok else {
            unlink(temporary)
            throw FileWriteError(path: path, reason: reason + kept)
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw FileWriteError(path: path, reason: reason + kept)
        }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dirFD = open(directory.isEmpty ? "/" : directory, O_RDONLY)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    @usableFromInline package static func write(_ bytes: [UInt8], to path: String) throws(FileWriteError) {
        let failure: FileWriteError? = bytes.withUnsafeBytes { raw in
            do throws(FileWriteError) {
                try write(raw, to: path)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }
}
