import Foundation
import LatentCore
import LatentEvaluation
import LatentModels
import LatentData

/// How a run ended.
public enum TrainingOutcome: Sendable {
    /// Every step done; the last epoch's metrics.
    case finished(EpochMetrics)
    /// Stopped at a step boundary on request (SIGINT/SIGTERM); a checkpoint of that step was written.
    case interrupted(step: Int)
}

/// Live progress for the command line to render.
public struct TrainingProgress: Sendable {
    /// The epoch in progress, counted from 1.
    public var epoch: Int
    /// The epochs of the whole run.
    public var epochs: Int
    /// Steps taken so far.
    public var step: Int
    /// Steps of the whole run.
    public var totalSteps: Int
    /// The mean training loss over the epoch's batches so far.
    public var runningNELBO: Double
    /// Training examples per second since the epoch began.
    public var samplesPerSecond: Double
    /// Estimated seconds to the end of the run, at the pace of this session's steps so far.
    public var etaSeconds: Double
}

/// Runs a whole training job: data, model, epochs, per-epoch test evaluation, metrics and atomic checkpoints.
public final class TrainingSession {
    /// What the run was asked to do (for a resumed run, the options it was started with).
    public let options: TrainingOptions
    /// The data, after `trainLimit` and `testLimit`.
    public let dataset: Dataset
    /// The model being trained.
    public let model: VariationalAutoencoder<Float>
    /// The training loop: the epochs' order, the step counter and Adam.
    public let trainer: Trainer
    /// The per-epoch test evaluation, with the run's thread count (and the trainer's pool, when it has one).
    public let evaluator: Evaluator
    /// The test images as the model's inputs: binarized once with a fixed seed, or intensities (MATH.md §1).
    public let testBinarized: [Float]
    /// The number of test images evaluated.
    public let testCount: Int
    /// The metrics of every completed epoch, those of a resumed run's earlier epochs included.
    public private(set) var history: [EpochMetrics] = []

    /// Seed of the static test binarization (fixed, independent of the training seed).
    package static let testBinarizationSeed = Evaluator.testBinarizationSeed

    /// Partial sums of the epoch in progress when resuming mid-epoch.
    var resumedEpochSums: TermSums?
    var resuming = false
    /// A resumed run that was extended: its `options.json` gets the new length, so a later resume keeps it.
    var rewritesOptions = false
    /// The other processes of a data-parallel job (`mpirun`), nil for one process: rank 0 alone writes the run's files.
    package let communicator: (any Communicator)?
    /// Where rank 0 appends one line per step, "step mean-loss" (`--log-steps`), when set.
    public var stepLogPath: String?
    /// What the command line should tell the user before the run starts (e.g. that a resume changes the sums' order).
    public private(set) var notes: [String] = []

    /// Processes that train together (1 without `mpirun`).
    public var ranks: Int { communicator?.size ?? 1 }
    /// Whether this process writes the run's files and progress: the only process, or rank 0 of a job.
    public var isWriter: Bool { (communicator?.rank ?? 0) == 0 }

    /// Continues the run in `directory` from its checkpoint, with the options it was started with; `epochs` or
    /// `iterations` extends it (nothing depends on the run's length, so the result is the longer run's, bit for bit).
    public static func resume(directory: String, dataset: Dataset? = nil, epochs: Int? = nil,
                              iterations: Int? = nil) throws -> TrainingSession {
        try resume(directory: directory, dataset: dataset, epochs: epochs, iterations: iterations, communicator: nil)
    }

    /// `resume` as one rank of a data-parallel job: every rank reads the same run directory.
    package static func resume(directory: String, dataset: Dataset? = nil, epochs: Int? = nil, iterations: Int? = nil,
                               communicator: (any Communicator)?) throws -> TrainingSession {
        let optionsPath = TrainingOptions.path(in: directory)
        guard let data = FileManager.default.contents(atPath: optionsPath) else {
            throw FileManager.default.fileExists(atPath: directory)
                ? CheckpointError.missingOptions(directory: directory) : CheckpointError.missing(path: directory)
        }
        var options: TrainingOptions
        do {
            options = try JSONDecoder().decode(TrainingOptions.self, from: data)
        } catch {
            throw CheckpointError.badHeader(path: optionsPath, reason: "not the options.json of a latent run")
        }
        options.out = directory
        let extending = epochs != nil || iterations != nil
        if extending { (options.epochs, options.iterations) = (epochs, iterations) }
        let checkpoint = try Checkpoint.load(from: directory)
        guard checkpoint.configuration == options.configuration else {
            throw CheckpointError.configurationMismatch(path: directory)
        }
        let state = checkpoint.state
        var agreement = [("--seed", state.seed == options.seed), ("--batch", state.batch == options.batch),
                         ("--lr", state.learningRate == options.learningRate),
                         ("--threads", state.threads == options.threads), ("--data", state.data == options.data)]
        if let parallelism = state.parallelism {
            agreement += [("--parallelism", parallelism == options.parallelism.rawValue),
                          ("--train-limit", state.trainLimit == options.trainLimit),
                          ("--test-limit", state.testLimit == options.testLimit)]
        }
        for (field, agrees) in agreement where !agrees {
            throw CheckpointError.optionsMismatch(path: directory, field: field)
        }
        let session = try TrainingSession(options: options, dataset: dataset, communicator: communicator)
        if (state.ranks ?? 1) != session.ranks {
            session.notes.append("note: the run in \(directory) was trained by \(state.ranks ?? 1) process(es) and "
                + "continues on \(session.ranks): the gradient's sums are added in another order, so the result is "
                + "close to, not bit-identical with, an uninterrupted run")
        }
        session.model.load(checkpoint, adam: session.trainer.adam)
        session.trainer.restore(step: state.step, epoch: state.epoch, optimizerStep: state.optimizerStep)
        session.trainer.restore(skippedBatches: state.skippedBatches ?? 0)
        session.model.factorizationRetries.restore(state.factorizationRetries ?? 0)
        session.resumedEpochSums = state.epochSums
        session.resuming = true
        if extending {
            // A run that finished mid-epoch (`--iterations`) counted that epoch as done and kept no partial sums.
            guard state.epoch * session.trainer.stepsPerEpoch <= state.step else {
                throw TrainingError.invalidOption("the run in \(directory) finished mid-epoch at step \(state.step) "
                    + "(its --iterations), so it cannot be extended bit for bit; start a new run of the length you "
                    + "want")
            }
            guard session.totalSteps >= state.step else {
                throw TrainingError.invalidOption("the run in \(directory) is already at step \(state.step) "
                    + "(\(state.epoch) epochs); to extend it, ask for more with --epochs or --iterations")
            }
            session.rewritesOptions = true
        }
        return session
    }

    /// A new run: checks the options, loads the data (unless `dataset` is given), builds and initializes the model
    /// from `options.seed`, and prepares the run directory `options.out`; ``run(progress:shouldStop:)`` trains it.
    public convenience init(options: TrainingOptions, dataset: Dataset? = nil) throws {
        try self.init(options: options, dataset: dataset, communicator: nil)
    }

    /// A session that is one rank of a data-parallel job when `communicator` is given (`--batch` is the global batch).
    package init(options: TrainingOptions, dataset: Dataset? = nil, communicator: (any Communicator)?) throws {
        try options.validate()
        self.options = options
        self.communicator = communicator
        // The memory check comes before the data set is loaded (from its headers) and before any large allocation.
        let declared = dataset == nil ? DatasetSize(directory: options.data) : nil
        let ranks = communicator?.size ?? 1
        if let declared { try MemoryEstimate(options: options, data: declared, ranks: ranks).check() }
        var data = try dataset ?? Dataset.load(directory: options.data, expectedPixels: options.configuration.inputs)
        guard data.train.pixelsPerImage == options.configuration.inputs else {
            throw DataError.wrongImageSize(path: options.data, rows: data.train.rows, columns: data.train.columns,
                                           expected: options.configuration.inputs)
        }
        if declared == nil {
            try MemoryEstimate(options: options, data: DatasetSize(data), loaded: dataset != nil, ranks: ranks).check()
        }
        data.train = data.train.prefix(options.trainLimit)
        data.test = data.test.prefix(options.testLimit)
        guard data.train.count > 0 else { throw DataError.empty(path: options.data + " (training images)") }
        guard data.test.count > 0 else { throw DataError.empty(path: options.data + " (test images)") }
        self.dataset = data
        model = VariationalAutoencoder<Float>(options.configuration)
        model.initialize(seed: options.seed)
        trainer = try Trainer(model: model, images: data.train, batchSize: options.batch,
                              learningRate: options.learningRate, seed: options.seed, threads: options.threads,
                              parallelism: options.parallelism, communicator: communicator)
        trainer.nonFinitePolicy = options.onNonFinite
        evaluator = try Evaluator(model: model, threads: options.threads,
                                  pool: trainer.parallelism == .blas ? nil : trainer.pool)
        testCount = data.test.count
        testBinarized = Binarization.evaluationInputs(data.test, mode: options.configuration.binarization,
                                                       seed: TrainingSession.testBinarizationSeed)
        try prepareOutputDirectory()
    }

    /// Total steps of the run.
    public var totalSteps: Int {
        if let iterations = options.iterations { return iterations }
        return (options.epochs ?? 20) * trainer.stepsPerEpoch
    }

    /// Trains to the end (or until `shouldStop` answers true at a step boundary), writing `metrics.jsonl` and an
    /// atomic `checkpoint` into `options.out` after every epoch, every `checkpointEvery` steps, and on a stop.
    public func run(progress: (TrainingProgress) -> Void = { _ in },
                    shouldStop: () -> Bool = { false }) throws -> TrainingOutcome {
        let metricsPath = EpochMetrics.path(in: options.out)
        try verifyParameters()
        let stepLog = try openStepLog()
        defer { try? stepLog?.close() }
        if !isWriter {
            // Only rank 0 touches the run's files.
        } else if resuming {
            try keepMetrics(throughEpoch: trainer.epoch, at: metricsPath)
            if rewritesOptions { try writeOptions() }
        } else {
            try removePreviousCheckpoint()
            guard FileManager.default.createFile(atPath: metricsPath, contents: nil) else {
                throw CheckpointError.unwritable(path: metricsPath, reason: "cannot create the file")
            }
            try writeOptions()
        }
        let total = totalSteps
        let perEpoch = trainer.stepsPerEpoch
        let epochs = (total + perEpoch - 1) / perEpoch
        let runStart = Date(), firstStep = trainer.step
        var last = history.last
        var epoch = trainer.epoch
        var sums = resumedEpochSums ?? TermSums()
        while trainer.step < total {
            trainer.beginEpoch(epoch)
            let epochStart = Date()
            var examplesHere = 0
            var lastReport = Date.distantPast
            var batch = trainer.step - epoch * perEpoch
            while batch < perEpoch && trainer.step < total {
                if agreedStop(shouldStop) {
                    try saveCheckpoint(completedEpochs: epoch, partial: sums)
                    return .interrupted(step: trainer.step)
                }
                let batchSums = try trainer.trainStep(batch: batch)
                sums = sums + batchSums
                try logStep(batchSums, to: stepLog)
                if trainer.step % TrainingSession.parameterCheckInterval == 0 { try verifyParameters() }
                examplesHere += min(options.batch, trainer.images.count - batch * options.batch)
                batch += 1
                if options.checkpointEvery > 0 && trainer.step % options.checkpointEvery == 0 && batch < perEpoch {
                    try saveCheckpoint(completedEpochs: epoch, partial: sums)
                }
                let now = Date()
                if isWriter && (now.timeIntervalSince(lastReport) >= 0.5 || trainer.step == total) {
                    lastReport = now
                    let rate = Double(examplesHere) / max(now.timeIntervalSince(epochStart), 1e-9)
                    let eta = now.timeIntervalSince(runStart) / Double(max(1, trainer.step - firstStep))
                        * Double(total - trainer.step)
                    progress(TrainingProgress(epoch: epoch + 1, epochs: epochs, step: trainer.step, totalSteps: total,
                                              runningNELBO: sums.loss / Double(max(1, sums.examples)),
                                              samplesPerSecond: rate, etaSeconds: eta))
                }
            }
            let seconds = Date().timeIntervalSince(epochStart)
            let evalStart = Date()
            let test = evaluateTest()
            let evalSeconds = Date().timeIntervalSince(evalStart)
            guard test.nelbo.isFinite else {
                throw TrainingError.nonFinite(step: trainer.step, term: "test NELBO (Rec or KL)")
            }
            guard sums.examples > 0 else { throw TrainingError.allBatchesSkipped(epoch: epoch + 1) }
            let metrics = EpochMetrics(
                epoch: epoch + 1, step: trainer.step, trainNELBO: sums.loss / Double(sums.examples),
                testNELBO: test.nelbo / Double(test.examples), testKL: test.kl / Double(test.examples),
                testRec: test.rec / Double(test.examples), seconds: seconds,
                samplesPerSecond: Double(examplesHere) / seconds, evalSeconds: evalSeconds,
                skippedBatches: trainer.skippedBatches,
                factorizationRetries: model.configuration.posterior == .covariance
                    ? model.factorizationRetries.value : nil, ranks: ranks)
            history.append(metrics)
            // Metrics before the checkpoint: after a crash between the two, resuming drops the extra line.
            if isWriter { try appendLine(metrics, to: metricsPath) }
            try saveCheckpoint(completedEpochs: epoch + 1, partial: nil)
            last = metrics
            epoch += 1
            sums = TermSums()
        }
        guard let last else { throw TrainingError.invalidOption("nothing to train: the run has already finished") }
        return .finished(last)
    }

    /// Drops metrics lines past the checkpoint's completed epochs (a crash between the two writes of an epoch).
    func keepMetrics(throughEpoch completed: Int, at path: String) throws {
        let text = (FileManager.default.contents(atPath: path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        var kept = [String]()
        for line in text.split(separator: "\n") {
            guard let metrics = try? JSONDecoder().decode(EpochMetrics.self, from: Data(line.utf8)),
                  metrics.epoch <= completed else { continue }
            kept.append(String(line))
            history.append(metrics)
        }
        let body = kept.map { $0 + "\n" }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data(body.utf8)) else {
            throw CheckpointError.unwritable(path: path, reason: "cannot rewrite the metrics file")
        }
    }

    func prepareOutputDirectory() throws {
        do {
            try FileManager.default.createDirectory(atPath: options.out, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.unwritable(path: options.out, reason: "cannot create the directory")
        }
        guard FileManager.default.isWritableFile(atPath: options.out) else {
            throw CheckpointError.unwritable(path: options.out, reason: "permission denied")
        }
    }

    /// Whether `options.out` holds a checkpoint that a new run there will replace (`run` removes it first).
    package var replacesPreviousRun: Bool {
        !resuming && FileManager.default.fileExists(atPath: Checkpoint.path(in: options.out))
    }

    /// Removes the checkpoint a previous run left in `options.out`, before this run writes its options and metrics:
    /// otherwise a failure before this run's first checkpoint would leave the old model beside the new options.
    func removePreviousCheckpoint() throws {
        let path = Checkpoint.path(in: options.out)
        guard FileManager.default.fileExists(atPath: path) else { return }
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw CheckpointError.unwritable(path: path, reason: "cannot remove the previous run's checkpoint")
        }
    }

    func writeOptions() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let path = TrainingOptions.path(in: options.out)
        guard FileManager.default.createFile(atPath: path, contents: try encoder.encode(options)) else {
            throw CheckpointError.unwritable(path: path, reason: "cannot create the file")
        }
    }

    func appendLine(_ metrics: EpochMetrics, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(metrics)
        line.append(0x0A)
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CheckpointError.unwritable(path: path, reason: "cannot open for appending")
        }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: line)
    }

    /// Writes the checkpoint atomically; `partial` carries the sums of an epoch in progress.
    package func saveCheckpoint(completedEpochs: Int, partial: TermSums?) throws {
        let state = TrainingState(seed: options.seed, step: trainer.step, epoch: completedEpochs, batch: options.batch,
                                  learningRate: options.learningRate, threads: options.threads, data: options.data,
                                  optimizerStep: trainer.adam.step, epochSums: partial,
                                  skippedBatches: trainer.skippedBatches,
                                  factorizationRetries: model.factorizationRetries.value,
                                  parallelism: options.parallelism.rawValue, trainLimit: options.trainLimit,
                                  testLimit: options.testLimit, ranks: communicator.map { $0.size })
        guard isWriter else { return }
        try model.checkpoint(adam: trainer.adam, state: state).save(to: options.out)
    }
}
