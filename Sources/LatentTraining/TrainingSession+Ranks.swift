import Foundation
import LatentCore
import LatentModels

/// What a session does with the other ranks of a data-parallel job (DESIGN.md § Several processes), and the per-step
/// log; each is a no-op or a plain local computation for one process.
extension TrainingSession {
    /// Steps between checks that every rank holds the same parameters.
    package static let parameterCheckInterval = 100

    /// Whether the run stops before this step: a stop asked on any rank stops every rank at the same step (one small
    /// allreduce per step), so that rank 0's checkpoint is of the step they all reached.
    func agreedStop(_ shouldStop: () -> Bool) -> Bool {
        let asked = shouldStop()
        guard let communicator else { return asked }
        return communicator.maximum(asked ? 1 : 0) > 0
    }

    /// The test set's sums: each rank evaluates its share of the examples, and the shares' sums are added.
    func evaluateTest() -> TermSums {
        guard let communicator else { return evaluator.evaluate(binarized: testBinarized, count: testCount) }
        let share = Parallel.slice(testCount, parts: communicator.size, part: communicator.rank)
        let local = evaluator.evaluate(binarized: testBinarized, examples: share)
        var values = [local.rec, local.kl, local.loss, Double(local.examples)]
        communicator.allreduceSum(&values, count: values.count)
        return TermSums(rec: values[0], kl: values[1], loss: values[2], examples: Int(values[3]))
    }

    /// Stops the job, on every rank, when the ranks' parameters differ (their CRC-32 disagree): the sums every rank
    /// applies are the same, so a difference means a fault, and training on would mix different models.
    func verifyParameters() throws {
        guard let communicator else { return }
        let store = model.store.parameters
        let crc = CRC32.checksum(UnsafeRawBufferPointer(start: store.pointer,
                                                        count: store.count * MemoryLayout<Float>.stride))
        guard communicator.agree(on: Double(crc)) else { throw TrainingError.ranksDiverged(step: trainer.step) }
    }

    /// The per-step log (`stepLogPath`), opened on rank 0: created for a new run, appended to on a resume.
    func openStepLog() throws -> FileHandle? {
        guard let path = stepLogPath, isWriter else { return nil }
        if !resuming || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CheckpointError.unwritable(path: path, reason: "cannot create the step log (--log-steps)")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CheckpointError.unwritable(path: path, reason: "cannot open the step log (--log-steps)")
        }
        try handle.seekToEnd()
        return handle
    }

    /// Appends "step mean-loss" for the step just taken (the loss of its global batch).
    func logStep(_ sums: TermSums, to log: FileHandle?) throws {
        guard let log else { return }
        let line = String(format: "%d %.9g\n", trainer.step, sums.loss / Double(max(1, sums.examples)))
        try log.write(contentsOf: Data(line.utf8))
    }
}
