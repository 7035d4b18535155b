import Foundation

extension BLASThreads {
    /// Sets OpenBLAS's thread count to `count` and checks that the threads it started for it exist: OpenBLAS ignores
    /// a thread it cannot create and would later wait for it forever inside a GEMM. On a shortfall the count goes
    /// back to 1 (the calling thread alone, which never waits) and the error says how many started.
    package static func start(_ count: Int) throws(WorkerPoolError) {
        let before = highest
        let threadsBefore = ProcessThreads.count()
        set(count)
        let expected = Swift.max(0, current - before)
        guard expected > 0, let threadsBefore, let threadsAfter = ProcessThreads.count() else { return }
        let created = threadsAfter - threadsBefore
        guard created < expected else { return }
        set(1)
        throw .cannotStart(thread: Swift.max(0, created) + 1, of: expected,
                           reason: "OpenBLAS could not create it")
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
