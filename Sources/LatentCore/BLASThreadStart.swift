import Foundation

extension BLASThreads {
    /// Sets OpenBLAS's thread count to `count` after checking that the threads it will start can be: OpenBLAS ignores
    /// a thread it cannot create, then waits for it forever inside a GEMM and joins it at exit. As many threads are
    /// started and ended first (a pool), so a limit on the process's threads is an error here; should OpenBLAS
    /// still start fewer (another process took the last ones meanwhile), its count goes back to 1 and the error
    /// says how many started.
    package static func start(_ count: Int) throws(WorkerPoolError) {
        let before = highest
        let expected = Swift.max(0, Swift.min(count, maximum ?? count) - before)
        if expected > 0 { _ = try WorkerPool(size: expected + 1) }
        let threadsBefore = ProcessThreads.count()
        set(count)
        guard expected > 0, let threadsBefore, let threadsAfter = ProcessThreads.count() else { return }
        let created = threadsAfter - threadsBefore
        guard created < expected else { return }
        set(1)
        throw .cannotStart(thread: Swift.max(0, created) + 1, of: expected, reason: "OpenBLAS could not create it")
    }
}

/// The threads of this process, as Linux counts them (`Threads:` in /proc/self/status); nil where it is not known.
package enum ProcessThreads {
    package static func count() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Threads:") {
            return Int(line.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}

extension BLASThreads {
    /// The most threads OpenBLAS has run so far (it keeps every thread it starts): its count at load until set.
    package static var highest: Int {
        let set = started.withLock { $0 }
        return set == 0 ? current : set
    }

    /// The most threads this OpenBLAS runs (its build's `MAX_THREADS`, which `set` caps at); nil when its
    /// configuration does not say.
    package static var maximum: Int? {
        guard let range = configuration.range(of: "MAX_THREADS=") else { return nil }
        return Int(configuration[range.upperBound...].prefix { $0.isNumber })
    }
}
