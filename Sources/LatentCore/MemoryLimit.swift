import Foundation

/// The memory this process may use: the machine's physical memory, or less when a Linux control group (a container's
/// `--memory`, a systemd slice) caps it, so that a run too large for its container fails with a message up front
/// instead of being killed by the kernel's OOM killer halfway through.
@usableFromInline package enum MemoryLimit {
    /// The smaller of physical memory and every control-group limit found for this process (v1 and v2), in bytes,
    /// and whether a control group's limit is the smaller (the error message then names it).
    @usableFromInline package static func available() -> (bytes: Double, isControlGroupLimit: Bool) {
        let physical = Double(ProcessInfo.processInfo.physicalMemory)
        guard let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else {
            return (physical, false)
        }
        let limits = limitFiles(membership: membership).compactMap { path in
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap(parseLimit)
        }
        let smallest = limits.min() ?? .infinity
        return smallest < physical ? (smallest, true) : (physical, false)
    }

    /// The limit files that may apply, from the contents of `/proc/self/cgroup`: those of the process's group and of
    /// every group above it (a parent's limit binds its children too) under the v2 hierarchy (`0::/path`) and under
    /// v1's memory controller (`N:memory:/path`), down to each hierarchy's root, which is the process's own group
    /// inside a container with a cgroup namespace.
    static func limitFiles(membership: String, root: String = "/sys/fs/cgroup") -> [String] {
        var files: [String] = []
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let (directory, file): (String, String)
            if fields[0] == "0" && fields[1].isEmpty {
                (directory, file) = (root, "memory.max")
            } else if fields[1].split(separator: ",").contains("memory") {
                (directory, file) = (root + "/memory", "memory.limit_in_bytes")
            } else {
                continue
            }
            var groups = fields[2].split(separator: "/").map(String.init)
            while true {
                files.append(([directory] + groups + [file]).joined(separator: "/"))
                guard !groups.isEmpty else { break }
                groups.removeLast()
            }
        }
        var seen = Set<String>()
        return files.filter { seen.insert($0).inserted }
    }

    /// A limit file's value in bytes, or nil for no limit: v2 writes `max`, v1 a number near 2⁶³ rounded to pages.
    static func parseLimit(_ contents: String) -> Double? {
        let text = contents.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = UInt64(text), bytes < 1 << 62 else { return nil }
        return Double(bytes)
    }
}
