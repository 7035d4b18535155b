#if canImport(Glibc)
import Glibc
#endif

/// Counts Cholesky factorizations that needed a larger jitter, once each; shared by the workers of one run (a model
/// keeps one for training and one for evaluation).
@usableFromInline package final class FactorizationCounter: @unchecked Sendable {
    private var count = 0
    private let lock = NSLockLike()
    @usableFromInline package init() {}
    @usableFromInline package func record() { lock.withLock { count += 1 } }
    /// Continues the count of a resumed run.
    @usableFromInline package func restore(_ value: Int) { lock.withLock { count = value } }
    @usableFromInline package var value: Int { lock.withLock { count } }
}

/// A tiny mutex over pthread_mutex, so LatentModels need not import Foundation for it.
final class NSLockLike: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func withLock<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}
