import LatentCore
import LatentEvaluation
import LatentModels

/// Data parallelism across processes (DESIGN.md § Several processes): each rank runs its local strategy on its share
/// of the global batch (random draws keyed by the global row, the loss divided by the global batch size), the flat
/// gradient and the step's sums are summed over the ranks in place, and every rank hands the same sum to Adam, so the
/// parameters stay identical. The only difference from one process with the same global batch is the order of sums.
package final class DistributedStrategy: TrainingStrategy {
    package let local: any TrainingStrategy
    package let communicator: any Communicator
    package let model: VariationalAutoencoder<Float>
    /// The summed gradient, laid out like the parameters.
    package let gradient: Buffer<Float>
    /// The step's Rec, KL and loss sums, its examples, and per failing term how many ranks reported it.
    let totals: Buffer<Double>
    let collector: FlatGradient
    let region = StepRegion<DistributedStrategy> { $0.update(part: $1) }
    var consumer: (any GradientConsumer)?

    package var workers: Int { local.workers }
    package var blasThreads: Int { local.blasThreads }
    package var pool: WorkerPool { local.pool }

    /// What `StepFailure.failedTerm` may name, in the order it names them: the agreed failure is the first that any
    /// rank reported.
    static let terms = [StepFailure.factorization.description, "Rec", StepFailure.logQ.description,
                        StepFailure.logPrior.description, "KL", "importance-weighted bound",
                        StepFailure.posteriorGradient.description]

    package init(local: any TrainingStrategy, model: VariationalAutoencoder<Float>, communicator: any Communicator) {
        self.local = local
        self.model = model
        self.communicator = communicator
        gradient = Buffer(count: model.parameterCount)
        totals = Buffer(count: 4 + DistributedStrategy.terms.count)
        collector = FlatGradient(gradient)
        region.owner = self
    }

    /// The rows of a global batch of `rows` that rank `rank` of `ranks` computes.
    package static func share(of rows: Int, rank: Int, ranks: Int) -> Range<Int> {
        Parallel.slice(rows, parts: ranks, part: rank)
    }

    package func computeGradients(_ batch: StepBatch) -> (sums: TermSums, failedTerm: String?) {
        let share = DistributedStrategy.share(of: batch.rows, rank: communicator.rank, ranks: communicator.size)
        let t = totals.pointer
        t.update(repeating: 0, count: totals.count)
        if share.isEmpty {
            gradient.pointer.update(repeating: 0, count: gradient.count)
        } else {
            let result = local.computeGradients(batch.share(share))
            local.apply(collector)
            (t[0], t[1], t[2], t[3]) = (result.sums.rec, result.sums.kl, result.sums.loss, Double(result.sums.examples))
            if let term = result.failedTerm {
                t[4 + (DistributedStrategy.terms.firstIndex(of: term) ?? DistributedStrategy.terms.count - 1)] = 1
            }
        }
        communicator.allreduceSum(gradient.pointer, count: gradient.count)
        communicator.allreduceSum(t, count: totals.count)
        let sums = TermSums(rec: t[0], kl: t[1], loss: t[2], examples: Int(t[3]))
        let failed = DistributedStrategy.terms.indices.first { t[4 + $0] > 0 }
        return (sums, failed.map { DistributedStrategy.terms[$0] })
    }

    /// Hands the summed gradient to `consumer`, one stretch of parameters per worker of the local pool.
    package func apply(_ consumer: any GradientConsumer) {
        self.consumer = consumer
        pool.run(region)
        self.consumer = nil
    }

    package func update(part w: Int) {
        let range = Parallel.slice(gradient.count, parts: pool.size, part: w)
        guard !range.isEmpty else { return }
        consumer!.consume(parameters: model.store.parameters.pointer, range: range,
                          gradient: gradient.pointer + range.lowerBound)
    }

    /// The local strategy's gradient was handed over in `computeGradients`: nothing is held.
    package func discard() {}
}

/// A gradient consumer that copies each range into one flat buffer laid out like the parameters (ranges may arrive
/// from several workers at once; they are disjoint).
package final class FlatGradient: GradientConsumer {
    package let buffer: Buffer<Float>
    package init(_ buffer: Buffer<Float>) { self.buffer = buffer }
    package func consume(parameters _: UnsafeMutablePointer<Float>, range: Range<Int>, gradient: UnsafePointer<Float>) {
        (buffer.pointer + range.lowerBound).update(from: gradient, count: range.count)
    }
}
