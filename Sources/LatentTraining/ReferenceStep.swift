import LatentCore
import LatentEvaluation
import LatentModels

/// The training step as mathematics, serial, read top to bottom (MATH.md §1–§5, DESIGN.md § The training step):
///
///     x, ε            inputs of the batch (binary draws or intensities) and the posterior's noise
///     encode          encoder MLP: x → the posterior's parameters
///     sample          z = μ + Lε (the objective's `afterEncoder`)
///     decode          decoder MLP: z → one output per pixel
///     loss            likelihood and KL, or the importance-weighted bound (`afterDecoder`)
///     backward        decoder, then dz → the posterior's parameters (`afterDecoderBackward`), then encoder
///     update          Adam on the one flat gradient buffer
///
/// It is what `latent train --threads 1` runs. The parallel strategies (`DataParallelStep`, `TensorParallelStep`,
/// `BLASThreadedStep`) run the same phases and are tested against it; a change to the model starts here.
package final class ReferenceStep: TrainingStrategy {
    package let model: VariationalAutoencoder<Float>
    package let objective: any TrainingObjective
    /// Every activation and per-example buffer of a full batch, allocated once.
    package let workspace: StepWorkspace<Float>
    /// dLoss/dθ for every parameter, laid out like the parameters.
    package let gradient: Buffer<Float>
    package let pool: WorkerPool
    package let blasThreads: Int
    package var workers: Int { 1 }

    package init(model: VariationalAutoencoder<Float>, batchSize: Int, blasThreads: Int = 1,
                 pool: WorkerPool? = nil) throws {
        self.model = model
        objective = model.objective
        workspace = StepWorkspace(model: model, capacity: batchSize)
        gradient = Buffer(count: model.parameterCount)
        self.blasThreads = blasThreads
        self.pool = try pool.flatMap { $0.size == 1 ? $0 : nil } ?? WorkerPool(size: 1)
    }

    /// Runs with subnormals flushed to zero, as every part of a parallel region does (`WorkerPool`).
    package func computeGradients(_ batch: StepBatch) -> (sums: TermSums, failedTerm: String?) {
        SubnormalFlushing.during { pass(batch) }
    }

    package func pass(_ batch: StepBatch) -> (sums: TermSums, failedTerm: String?) {
        let p = UnsafePointer(model.store.parameters.pointer), g = gradient.pointer
        let ws = workspace, rows = batch.rows, m = model.configuration.samples
        // The loss is the (global) batch mean: every per-example gradient is scaled by 1/rows of the global batch.
        let lossScale = batch.lossScale
        var failure: StepFailure?
        batch.prepare(rows: 0..<rows, model: model, into: ws)

        model.encoder.forward(parameters: p, input: ws.x.pointer, rows: rows, workspace: ws.encoder)
        do {
            try objective.afterEncoder(model: model, rows: rows, samples: m, workspace: ws)
        } catch {
            failure = .factorization  // the rest runs on what the factorization left; the batch is dropped
        }
        model.decoder.forward(parameters: p, input: ws.z.pointer, rows: m * rows, workspace: ws.decoder)
        let sums = objective.afterDecoder(model: model, parameters: p, rows: rows, samples: m, workspace: ws,
                                          gradients: g, lossScale: lossScale, accumulate: false)

        model.decoder.backward(parameters: p, gradients: g, input: ws.z.pointer, rows: m * rows, workspace: ws.decoder,
                               inputGradient: ws.dz.pointer, accumulate: false)
        objective.afterDecoderBackward(model: model, parameters: p, rows: rows, samples: m, workspace: ws,
                                       gradients: g, lossScale: lossScale, accumulate: false)
        model.encoder.backward(parameters: p, gradients: g, input: ws.x.pointer, rows: rows, workspace: ws.encoder,
                               inputGradient: nil, accumulate: false)

        failure = failure ?? StepFailure.diagnose(ws, rows: rows, model: model)
        return (sums, withUnsafePointer(to: failure) {
            StepFailure.failedTerm(sums, UnsafeBufferPointer(start: $0, count: 1))
        })
    }

    package func apply(_ consumer: any GradientConsumer) {
        SubnormalFlushing.during {
            consumer.consume(parameters: model.store.parameters.pointer, range: 0..<model.parameterCount,
                             gradient: gradient.pointer)
        }
    }

    /// The gradient is overwritten by the next step: nothing to drop.
    package func discard() {}
}

/// The reference step with OpenBLAS's own threads inside each GEMM (`--parallelism blas`).
package final class BLASThreadedStep: TrainingStrategy {
    package let reference: ReferenceStep
    package var workers: Int { 1 }
    package var blasThreads: Int { reference.blasThreads }
    package var pool: WorkerPool { reference.pool }

    /// Starts OpenBLAS's threads now, so that a thread it cannot create is an error here, not a hang in a GEMM.
    package init(model: VariationalAutoencoder<Float>, batchSize: Int, threads: Int) throws {
        reference = try ReferenceStep(model: model, batchSize: batchSize, blasThreads: max(1, threads))
        try BLASThreads.start(reference.blasThreads)
    }

    package func computeGradients(_ batch: StepBatch) -> (sums: TermSums, failedTerm: String?) {
        reference.computeGradients(batch)
    }
    package func apply(_ consumer: any GradientConsumer) { reference.apply(consumer) }
    package func discard() {}
}
