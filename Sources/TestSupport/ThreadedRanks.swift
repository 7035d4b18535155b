import Foundation
import LatentCore

/// Ranks of a data-parallel job as threads of one process, for tests without mpirun: each collective waits for every
/// rank, and the sum is added in rank order (as a fixed-order allreduce would), so every rank gets the same bits.
public final class ThreadedRanks: @unchecked Sendable {
    public let size: Int
    let condition = NSCondition()
    var arrived = 0, generation = 0
    var floats: [UnsafeMutablePointer<Float>?]
    var doubles: [UnsafeMutablePointer<Double>?]

    public init(size: Int) {
        self.size = size
        floats = Array(repeating: nil, count: size)
        doubles = Array(repeating: nil, count: size)
    }

    /// Runs `body(rank, communicator)` on one thread per rank and waits for all of them.
    package func run(_ body: @escaping (Int, any Communicator) -> Void) {
        struct Unchecked: @unchecked Sendable { let body: (Int, any Communicator) -> Void }
        let group = DispatchGroup(), unchecked = Unchecked(body: body)
        for rank in 0..<size {
            let communicator = Rank(rank: rank, ranks: self)
            let thread = Thread { unchecked.body(rank, communicator); group.leave() }
            thread.stackSize = 8 << 20
            group.enter()
            thread.start()
        }
        group.wait()
    }

    /// Waits until every rank has arrived.
    func barrier() {
        condition.lock()
        let mine = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == mine { condition.wait() }
        }
        condition.unlock()
    }

    /// One rank's view.
    final class Rank: Communicator, @unchecked Sendable {
        let rank: Int
        let ranks: ThreadedRanks
        var size: Int { ranks.size }
        init(rank: Int, ranks: ThreadedRanks) { (self.rank, self.ranks) = (rank, ranks) }

        func reduce<T>(_ values: UnsafeMutablePointer<T>, count: Int, slots: ReferenceWritableKeyPath<ThreadedRanks,
                       [UnsafeMutablePointer<T>?]>, _ combine: (T, T) -> T) {
            let copy = UnsafeMutablePointer<T>.allocate(capacity: count)
            defer { copy.deallocate() }
            copy.initialize(from: values, count: count)
            ranks[keyPath: slots][rank] = copy
            ranks.barrier()
            for i in 0..<count {
                var total = ranks[keyPath: slots][0]![i]
                for r in 1..<size { total = combine(total, ranks[keyPath: slots][r]![i]) }
                values[i] = total
            }
            ranks.barrier()
        }

        func allreduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) {
            reduce(values, count: count, slots: \.floats, +)
        }
        func allreduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) {
            reduce(values, count: count, slots: \.doubles, +)
        }
        func allreduceMax(_ values: UnsafeMutablePointer<Double>, count: Int) {
            reduce(values, count: count, slots: \.doubles) { Swift.max($0, $1) }
        }
        func abort(status: Int32) -> Never { fatalError("rank \(rank) aborted the job with status \(status)") }
    }
}
