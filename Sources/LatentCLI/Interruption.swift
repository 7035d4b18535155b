#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT, SIGTERM and SIGUSR1 (which mpirun forwards to its ranks at once) ask a long run to stop at the next step boundary (after writing a checkpoint) instead of
/// killing it mid-write. A second signal of either kind ends the process at once, as does one while `immediate`.
enum Interruption {
    /// The signal received (0: none). An atomic, so the handler only stores to it.
    static let received = Atomic<Int32>(0)
    /// Set while the process has nothing to save and no step boundary to stop at (`compare`'s evaluations): a
    /// signal then ends it at once.
    static let immediate = Atomic<Bool>(false)

    static func install() {
        for sig in [SIGINT, SIGTERM, SIGUSR1] {
            signal(sig) { number in
                if Interruption.received.exchange(number, ordering: .relaxed) != 0
                    || Interruption.immediate.load(ordering: .relaxed) {
                    _exit(128 + number)
                }
            }
        }
    }

    static var requested: Bool { received.load(ordering: .relaxed) != 0 }

    /// The conventional exit status of a process stopped by the signal received.
    static var exitStatus: Int32 { 128 + received.load(ordering: .relaxed) }
}
