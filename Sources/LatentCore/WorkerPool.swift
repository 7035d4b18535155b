#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A fixed set of threads that run one parallel region at a time, `body(part)` for part in 0..<size, with the
/// calling thread as part 0. Workers spin briefly between regions (a training step has two regions a few hundred
/// microseconds apart) and then sleep, so a region starts in well under a microsecond while the pool is busy and
/// costs nothing while it is idle. A region given as a `ParallelRegion` object starts without allocating; one given
/// as a closure costs one small allocation (its context), like `DispatchQueue.concurrentPerform`. Every part runs
/// with subnormal floats flushed to zero (`SubnormalFlushing`); the calling thread gets its own mode back afterwards.
public final class WorkerPool: @unchecked Sendable {
    /// The number of parts of every region: the calling thread (part 0) and `size − 1` worker threads.
    public let size: Int
    private let state: PoolState
    private var threads: [pthread_t] = []

    /// The most parts a pool may have: far more than any machine's cores, and few enough that the threads' stacks
    /// and OpenBLAS's per-thread buffers stay a small part of a process's address space.
    public static let maximumSize = 256

    /// Starts `size − 1` worker threads (at least one part: a size below 1 counts as 1); they end with the pool.
    /// Throws, with every thread already started stopped again, when `size` is above `maximumSize` or a thread
    /// cannot be created (a limit on the process's threads or its address space).
    public init(size: Int) throws(WorkerPoolError) {
        guard size <= WorkerPool.maximumSize else {
            throw .tooManyThreads(requested: size, limit: WorkerPool.maximumSize)
        }
        self.size = max(1, size)
        state = PoolState()
        for part in 1..<self.size {
            let context = Unmanaged.passRetained(WorkerContext(state: state, part: part))
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.state.work(part: context.part)
                return nil
            }, context.toOpaque())
            guard status == 0 else {
                context.release()
                stop()
                throw .cannotStart(thread: part, of: self.size - 1, reason: String(cString: strerror(status)))
            }
            threads.append(thread)
        }
    }

    deinit { stop() }

    /// Ends and joins every worker thread started so far.
    private func stop() {
        state.stopping.store(true, ordering: .releasing)
        state.generation.add(1, ordering: .releasing)
        for thread in threads { pthread_join(thread, nil) }
        threads = []
    }

    /// Runs `region.run(part:)` for every part concurrently and returns when all have finished. Unlike a closure,
    /// an object made once holds its state without a heap-allocated context: the training step's regions start
    /// with no allocation at all.
    @usableFromInline package func run(_ region: ParallelRegion) {
        guard size > 1 else {
            SubnormalFlushing.during { region.run(part: 0) }
            return
        }
        state.region = region
        start()
        SubnormalFlushing.during { region.run(part: 0) }
        finish()
        state.region = nil
    }

    /// Runs `body(part)` for every part concurrently and returns when all have finished. Parts must write disjoint
    /// memory (each worker owns its workspace, gradient buffer and parameter range), which is why `body` need
    /// not be `@Sendable`. Not reentrant. For code outside the training step; the step uses `run(_: ParallelRegion)`.
    public func run(_ body: (Int) -> Void) {
        guard size > 1 else {
            SubnormalFlushing.during { body(0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            state.body = escapable
            start()
            SubnormalFlushing.during { escapable(0) }
            finish()
            state.body = PoolState.idle
        }
    }

    /// Publishes the region to the other threads.
    private func start() {
        state.pending.store(size - 1, ordering: .relaxed)
        state.generation.add(1, ordering: .releasing)
    }

    /// Waits until every other thread has finished its part.
    private func finish() {
        var spins = 0
        while state.pending.load(ordering: .acquiring) != 0 {
            spins += 1
            if spins > PoolState.spinLimit { sched_yield() }
        }
    }
}

/// The work of one parallel region, for `WorkerPool.run(_:)`: parts must write disjoint memory.
@usableFromInline package protocol ParallelRegion: AnyObject {
    func run(part: Int)
}

/// The state the pool's threads share: a region counter, the parts still running, and the region's body
/// (written before `generation` is published, read by workers after they observe it).
private final class PoolState: @unchecked Sendable {
    let generation = Atomic<Int>(0)
    let pending = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    /// The region's body while it runs. A concrete, non-optional function type: an Optional or a generic slot
    /// would reabstract the closure through a heap-allocated thunk on every region.
    var body: (Int) -> Void = PoolState.idle
    /// The region's object, when it was given as one (takes precedence over `body`).
    var region: ParallelRegion?
    static let idle: @Sendable (Int) -> Void = { _ in }

    /// A waiting thread first spins (a region usually starts or ends within microseconds), then yields its core
    /// (so that a descheduled partner, or another process, can run: spinning there made a competing process
    /// collapse throughput), and an idle worker finally sleeps between checks.
    static let spinLimit = 1 << 12
    /// Yielding returns at once when nothing else is runnable, so a busy pool keeps its latency; only a pool idle
    /// for long (between epochs, during evaluation by other code) ends up sleeping.
    static let yieldLimit = 1 << 17

    func work(part: Int) {
        // Generation 0 is the state before any region: a region published before this thread got here must still
        // be seen as new, so the starting point is 0, not the current value.
        var seen = 0
        SubnormalFlushing.enable()
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins > PoolState.yieldLimit {
                    usleep(50)
                } else if spins > PoolState.spinLimit {
                    sched_yield()
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            if let region { region.run(part: part) } else { body(part) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

/// Why a `WorkerPool` could not be made.
public enum WorkerPoolError: Error, CustomStringConvertible, Equatable {
    /// More parts were asked for than `WorkerPool.maximumSize`.
    case tooManyThreads(requested: Int, limit: Int)
    /// Worker thread `thread` of `of` could not be created; `reason` is the system's (e.g. "Resource temporarily
    /// unavailable" under a limit on the process's threads).
    case cannotStart(thread: Int, of: Int, reason: String)

    /// One line: what failed and what to do.
    public var description: String { message(fewerThreads: "use fewer threads") }

    /// The message with `fewerThreads` as the remedy (the command line names its flag).
    public func message(fewerThreads: String) -> String {
        switch self {
        case let .tooManyThreads(requested, limit):
            return "\(requested) threads are more than the \(limit) a pool may have; \(fewerThreads)"
        case let .cannotStart(thread, count, reason):
            return "cannot start worker thread \(thread) of \(count) (\(reason)): this process may not have that many "
                + "threads (a limit such as ulimit -u, a pids control group, or ulimit -v); \(fewerThreads)"
        }
    }
}

private final class WorkerContext {
    let state: PoolState
    let part: Int
    init(state: PoolState, part: Int) {
        self.state = state
        self.part = part
    }
}
