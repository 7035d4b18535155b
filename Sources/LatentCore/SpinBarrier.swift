#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A reusable barrier for a fixed team of threads inside one parallel region: each `wait()` returns once every
/// member has called it the same number of times, and what a member wrote before it is visible to all after it.
/// Waiters spin for up to `spinSeconds` (a quiet team arrives within microseconds), then sleep on a condition
/// variable: a member that lost its core to another process is then moved by the kernel onto the sleeper's idle
/// core instead of waiting behind the other process (docs/PERFORMANCE.md § Tensor parallelism). Allocation-free after
/// init.
@usableFromInline package final class SpinBarrier: @unchecked Sendable {
    @usableFromInline package let count: Int
    private let arrived = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    /// How long a waiter spins before it sleeps.
    @usableFromInline package static let spinSeconds = 50e-6

    @usableFromInline package init(count: Int) {
        precondition(count >= 1, "a barrier needs at least one member")
        self.count = count
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Blocks until all `count` members have arrived.
    @inline(__always)
    @usableFromInline package func wait() {
        guard count > 1 else { return }
        let current = generation.load(ordering: .acquiring)
        if arrived.add(1, ordering: .acquiringAndReleasing).newValue == count {
            arrived.store(0, ordering: .relaxed)
            generation.store(current &+ 1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(condition)
                pthread_mutex_unlock(mutex)
            }
            return
        }
        if spin(while: current) { return }
        sleepers.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        while generation.load(ordering: .sequentiallyConsistent) == current {
            pthread_cond_wait(condition, mutex)
        }
        pthread_mutex_unlock(mutex)
        sleepers.subtract(1, ordering: .relaxed)
    }

    /// Spins until the generation moves on (true) or `spinSeconds` have passed (false).
    private func spin(while current: Int) -> Bool {
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        var spins = 0
        while generation.load(ordering: .acquiring) == current {
            spins += 1
            if spins & 255 == 0 {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let elapsed = Double(now.tv_sec - start.tv_sec) + Double(now.tv_nsec - start.tv_nsec) * 1e-9
                if elapsed > SpinBarrier.spinSeconds { return false }
            }
        }
        return true
    }
}
