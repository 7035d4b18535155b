import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What this process holds now and what the system lets it map: the starting point and the limits of a memory
/// estimate (`ulimit -v` bounds the address space, which OpenBLAS's buffers and the threads' stacks fill long
/// before they fill memory).
package struct ProcessMemory: Sendable {
    /// Resident bytes now (`VmRSS`), 0 where unknown.
    package var resident: Double
    /// Mapped bytes now (`VmSize`), 0 where unknown.
    package var mapped: Double

    package init(resident: Double, mapped: Double) {
        (self.resident, self.mapped) = (resident, mapped)
    }

    /// This process's, from `/proc/self/status` (zeros elsewhere).
    package static func current() -> ProcessMemory {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else {
            return ProcessMemory(resident: 0, mapped: 0)
        }
        return ProcessMemory(resident: field("VmRSS", in: status) ?? 0, mapped: field("VmSize", in: status) ?? 0)
    }

    /// A `Name:   123 kB` line of a status file, in bytes.
    static func field(_ name: String, in status: String) -> Double? {
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            let value = line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
                .flatMap { Double($0) }
            return value.map { $0 * 1024 }
        }
        return nil
    }

    /// The soft limit on this process's address space (`ulimit -v`, RLIMIT_AS) in bytes; nil when unlimited.
    package static func addressSpaceLimit() -> Double? { softLimit(RLIMIT_AS) }

    /// The address space a new thread's stack takes: the stack limit (`ulimit -s`), which glibc gives every thread,
    /// or 32 MiB when it is unlimited (more than glibc then takes).
    package static func threadStackBytes() -> Double {
        (softLimit(RLIMIT_STACK) ?? 32 * 1_048_576) + 4096
    }

    #if canImport(Glibc)
    private static func softLimit(_ resource: __rlimit_resource) -> Double? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0 else { return nil }
        return limit.rlim_cur == rlim_t.max ? nil : Double(limit.rlim_cur)
    }
    #else
    private static func softLimit(_ resource: Int32) -> Double? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        return limit.rlim_cur == RLIM_INFINITY ? nil : Double(limit.rlim_cur)
    }
    #endif
}
