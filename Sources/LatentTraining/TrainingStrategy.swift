import LatentCore
import LatentEvaluation
import LatentModels

/// One way of running the training step on the cores (DESIGN.md § The training step). Every strategy computes the
/// mathematics of `ReferenceStep`; they differ only in how the floating-point sums are cut and ordered, which the
/// strategies' tests bound against the reference.
package protocol TrainingStrategy: AnyObject {
    /// Workers (threads of the pool) the step runs on.
    var workers: Int { get }
    /// OpenBLAS threads inside each GEMM.
    var blasThreads: Int { get }
    /// The pool whose threads run the step (shared with the run's evaluator).
    var pool: WorkerPool { get }

    /// Forward and backward on `batch`: the loss's term sums, and the first failing term, named, when the batch
    /// cannot be used. The gradient is held until `apply` or `discard`.
    func computeGradients(_ batch: StepBatch) -> (sums: TermSums, failedTerm: String?)

    /// Hands the held gradient to `consumer` range by range (each parameter once) and clears it.
    func apply(_ consumer: any GradientConsumer)

    /// Drops the held gradient.
    func discard()
}

/// What receives a step's gradient, range by range: Adam in training, a flat buffer in the strategies' tests.
package protocol GradientConsumer: AnyObject {
    /// `gradient[i]` is the gradient of parameter `range.lowerBound + i` of `parameters`.
    func consume(parameters: UnsafeMutablePointer<Float>, range: Range<Int>, gradient: UnsafePointer<Float>)
}

extension Adam: GradientConsumer where T == Float {
    package func consume(parameters: UnsafeMutablePointer<Float>, range: Range<Int>, gradient: UnsafePointer<Float>) {
        update(parameters: parameters, range: range, blockGradient: gradient)
    }
}

/// A parallel region as an object made once, so that starting it allocates nothing; it refers to its strategy
/// without owning it (the strategy owns it).
package final class StepRegion<Owner: AnyObject>: ParallelRegion {
    package unowned(unsafe) var owner: Owner?
    /// What part `part` does (replaceable by tests, e.g. to make a worker late).
    package var body: (Owner, Int) -> Void
    package init(_ body: @escaping (Owner, Int) -> Void) { self.body = body }
    package func run(part: Int) { body(owner!, part) }
}
