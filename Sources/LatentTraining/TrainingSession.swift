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
    /// The fingerprints of the training and test images the run uses, which its checkpoints record (computed once).
    package private(set) lazy var fingerprints = (train: ImageSetFingerprint(dataset.train),
                                                  test: ImageSetFingerprint(dataset.test))
    var resuming = false
    /// A resumed run that was extended, or whose data moved: its `options.json` gets the new length and data path, so
    /// a later resume keeps them.
    var rewritesOptions = false
    /// Rank 0's claim on `options.out` (``RunLock``), from the session's creation until ``run(progress:shouldStop:)``
    /// returns; nil on the other ranks.
    var runLock: RunLock?
    /// What a resume keeps of `metrics.jsonl`, written back once when the run starts (rank 0).
    var keptMetrics: MetricsFile.Kept?
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
    /// `data` reads the data from another directory (the run's moved there): it must hold the same images.
    public static func resume(directory: String, data: String? = nil, dataset: Dataset? = nil, epochs: Int? = nil,
                              iterations: Int? = nil) throws -> TrainingSession {
        try resume(directory: directory, data: data, dataset: dataset, epochs: epochs, iterations: iterations,
                   communicator: nil)
    }

    /// `resume` as one rank of a data-parallel job: every rank reads the same run directory.
    package static func resume(directory: String, data: String? = nil, dataset: Dataset? = nil, epochs: Int? = nil,
                               iterations: Int? = nil, communicator: (any Communicator)?) throws -> TrainingSession {
        // Rank 0 claims the directory before reading it, so that what it resumes from is not being rewritten.
        var isDirectory: ObjCBool = false
        var lock: RunLock?
        if (communicator?.rank ?? 0) == 0, FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory),
           isDirectory.boolValue {
            lock = try RunLock(directory: directory, resuming: true)
        }
        var options = try TrainingOptions.load(runDirectory: directory)
        options.out = directory
        let checkpoint = try Checkpoint.load(from: directory)
        let state = checkpoint.state
        // With fingerprints the data is checked by content, wherever it is; without, by its path.
        let fingerprinted = state.trainSet != nil && state.testSet != nil
        try options.checkAgreement(with: checkpoint, directory: directory, comparesData: !fingerprinted && data == nil)
        let moved = (data.map { $0 != options.data } ?? false) || state.data != options.data
        if let data { options.data = data }
        let extending = epochs != nil || iterations != nil
        let written = (epochs: options.epochs, iterations: options.iterations)  // the length of the run that wrote it
        if extending { (options.epochs, options.iterations) = (epochs, iterations) }
        let session = try TrainingSession(options: options, dataset: dataset, communicator: communicator, lock: lock)
        let checkpointPath = Checkpoint.path(in: directory)
        if fingerprinted {
            try session.verifyData(trainSet: state.trainSet, testSet: state.testSet, checkpoint: checkpointPath)
        } else {
            session.notes.append("note: \(checkpointPath) was written before checkpoints recorded their data (format 3), "
                + "so resuming cannot verify that \(options.data) holds the images it was trained on")
        }
        let writtenSteps = written.iterations ?? (written.epochs ?? 0) * session.trainer.stepsPerEpoch
        try state.validatePosition(trainingImages: session.dataset.train.count, totalSteps: writtenSteps,
                                   path: checkpointPath)
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
        }
        // Rank 0 keeps the metrics of the epochs the checkpoint holds (written back when the run starts).
        if lock != nil {
            let kept = try MetricsFile(directory: directory).kept(completedEpochs: state.epoch)
            (session.history, session.keptMetrics) = (kept.history, kept)
            session.notes += kept.notes
        }
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
        // A moved data set's new path goes into options.json when the run starts (and into its next checkpoint).
        session.rewritesOptions = moved || extending
        return session
    }

    /// A new run: checks the options, loads the data (unless `dataset` is given), builds and initializes the model
    /// from `options.seed`, and prepares the run directory `options.out`; ``run(progress:shouldStop:)`` trains it.
    /// The directory is claimed until `run` returns: another process that tries to write it meanwhile is refused.
    public convenience init(options: TrainingOptions, dataset: Dataset? = nil) throws {
        try self.init(options: options, dataset: dataset, communicator: nil)
    }

    /// A session that is one rank of a data-parallel job when `communicator` is given (`--batch` is the global batch);
    /// rank 0 takes the lock of `options.out`, unless `lock` (a resume's) holds it already.
    package init(options: TrainingOptions, dataset: Dataset? = nil, communicator: (any Communicator)?,
                 lock: RunLock? = nil) throws {
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
        runLock = try lock ?? (isWriter ? RunLock(directory: options.out) : nil)
        if let note = runLock?.unenforced { notes.append(note) }
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
        let metricsFile = MetricsFile(directory: options.out)
        // The directory is held while the run writes it (taken again by a second call), and free once it returns.
        if isWriter && runLock == nil { runLock = try RunLock(directory: options.out, resuming: resuming) }
        defer { runLock = nil }
        try verifyParameters()
        // A new run replaces the old one only once it is committed to start: not when a stop came first.
        if !resuming && agreedStop(shouldStop) { throw RunDirectoryError.stoppedBeforeStart(directory: options.out) }
        let stepLog = try openStepLog()
        defer { try? stepLog?.close() }
        if !isWriter {
            // Only rank 0 touches the run's files.
        } else if resuming {
            if let keptMetrics { try metricsFile.keep(keptMetrics) }
            keptMetrics = nil
            if rewritesOptions { try writeOptions() }
        } else {
            try removePreviousCheckpoint()
            try metricsFile.create()
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
            if isWriter { try metricsFile.append(metrics) }
            try saveCheckpoint(completedEpochs: epoch + 1, partial: nil)
            last = metrics
            epoch += 1
            sums = TermSums()
        }
        guard let last else { throw TrainingError.invalidOption("nothing to train: the run has already finished") }
        return .finished(last)
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
        do {
            try AtomicFile.write(Array(try encoder.encode(options)), to: TrainingOptions.path(in: options.out))
        } catch let error as FileWriteError {
            throw CheckpointError.unwritable(path: error.path, reason: error.reason)
        }
    }

    /// Writes the checkpoint atomically; `partial` carries the sums of an epoch in progress.
    package func saveCheckpoint(completedEpochs: Int, partial: TermSums?) throws {
        let state = TrainingState(seed: options.seed, step: trainer.step, epoch: completedEpochs, batch: options.batch,
                                  learningRate: options.learningRate, threads: options.threads, data: options.data,
                                  optimizerStep: trainer.adam.step, epochSums: partial,
                                  skippedBatches: trainer.skippedBatches,
                                  factorizationRetries: model.factorizationRetries.value,
                                  parallelism: options.parallelism.rawValue, trainLimit: options.trainLimit,
                                  testLimit: options.testLimit, ranks: communicator.map { $0.size },
                                  trainSet: fingerprints.train, testSet: fingerprints.test)
        guard isWriter else { return }
        try model.checkpoint(adam: trainer.adam, state: state).save(to: options.out)
    }
}
