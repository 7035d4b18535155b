/// The collective operations that data parallelism across processes needs (DESIGN.md § Several processes): every
/// rank calls each operation in the same order, and each returns the same result on every rank.
package protocol Communicator: AnyObject {
    /// This process's index among the ranks, 0 ..< `size`.
    var rank: Int { get }
    /// How many processes train together.
    var size: Int { get }
    /// Replaces `values` with their element-wise sum over the ranks, in place.
    func allreduceSum(_ values: UnsafeMutablePointer<Float>, count: Int)
    /// Replaces `values` with their element-wise sum over the ranks, in place.
    func allreduceSum(_ values: UnsafeMutablePointer<Double>, count: Int)
    /// Replaces `values` with their element-wise maximum over the ranks, in place.
    func allreduceMax(_ values: UnsafeMutablePointer<Double>, count: Int)
    /// Ends every rank of the job with `status`, e.g. after an error on one rank that the others cannot see.
    func abort(status: Int32) -> Never
}

extension Communicator {
    /// The sum over the ranks of one value.
    package func sum(_ value: Double) -> Double {
        var v = value
        allreduceSum(&v, count: 1)
        return v
    }

    /// The maximum over the ranks of one value.
    package func maximum(_ value: Double) -> Double {
        var v = value
        allreduceMax(&v, count: 1)
        return v
    }

    /// Whether `value` is the same on every rank (one allreduce of the value and its negation).
    package func agree(on value: Double) -> Bool {
        var pair = (value, -value)
        withUnsafeMutablePointer(to: &pair) {
            $0.withMemoryRebound(to: Double.self, capacity: 2) { allreduceMax($0, count: 2) }
        }
        return pair.0 == -pair.1
    }
}
