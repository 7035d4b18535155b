import ArgumentParser
import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model; writes DIR/checkpoint, DIR/metrics.jsonl and DIR/options.json.",
        discussion: """
            SIGINT or SIGTERM stops at the next step boundary after writing a checkpoint; \
            `latent train --resume DIR` continues bit for bit (same metrics and parameters as an uninterrupted run); \
            `latent train --resume DIR --epochs N` extends a run to N epochs, as if it had been started with them.
            """)

    @OptionGroup var flags: TrainingFlags
    @Option(help: ArgumentHelp("Continue the run in DIR from its checkpoint, with the options it was started with; "
        + "--epochs or --iterations extends it, --data reads the same data from where it moved, and no other flag "
        + "may be given with it."))
    var resume: String?
    @Option(help: .hidden) var logSteps: String?
    @Flag(help: ArgumentHelp("Check the options, print the run's estimated peak memory (and address space, which "
        + "ulimit -v bounds) against this process's limits and exit, without loading the data or training: status 1 "
        + "when a limit is exceeded, as a run is then refused before it starts."))
    var dryRun = false

    func validate() throws {
        // The run's options come from DIR/options.json: a flag that would change them must not be silently dropped.
        guard let resume else { return try flags.model.rejectIgnoredFlags(posteriors: [flags.model.posterior]) }
        let ignored = givenFlags().subtracting(["--resume", "--epochs", "--iterations", "--data", "--log-steps"])
        guard !ignored.isEmpty else { return }
        throw ValidationError("--resume continues with the options in \(TrainingOptions.path(in: resume)); drop "
            + "\(ignored.sorted().joined(separator: ", ")) (only --epochs or --iterations may extend the run, and "
            + "--data point at its moved data)")
    }

    func run() throws {
        // Under mpirun, Open MPI is loaded and this process becomes one rank; without it nothing of MPI is touched.
        let mpi = try reportingErrors { try OpenMPI.fromEnvironment() }
        do {
            try train(mpi)
        } catch let exit as ExitCode where exit.rawValue > 128 {
            // Stopped on a signal at the step every rank agreed on, after rank 0's checkpoint: leave together.
            mpi?.finalize()
            throw exit
        } catch {
            // One rank's error (after its line on stderr) must end every rank, not leave them waiting in a sum.
            if let mpi { mpi.abort(status: 1) }
            throw error
        }
        mpi?.finalize()
    }

    func train(_ mpi: OpenMPI?) throws {
        if dryRun {
            return try reportingErrors {
                let estimate = try MemoryEstimate.newRun(flags.options)
                print(estimate.summary())
                try estimate.check()
            }
        }
        try reportingErrors(rank: mpi.map { $0.size > 1 ? $0.rank : nil } ?? nil) {
            Interruption.install()
            // `--resume DIR --data NEW`: the run's data moved (resuming checks it is the same).
            let movedData = givenFlags().contains("--data") ? flags.options.data : nil
            let session = try resume.map {
                try TrainingSession.resume(directory: $0, data: movedData, epochs: flags.epochs,
                                           iterations: flags.iterations, communicator: mpi)
            }
                ?? TrainingSession(options: flags.options, communicator: mpi)
            session.stepLogPath = logSteps
            let options = session.options
            let warnings = mpi.map { Ranks.launchWarnings($0, threads: options.threads) } ?? []
            guard session.isWriter else { return try runSilently(session) }
            warnings.forEach { printError($0) }
            session.notes.forEach { printError($0) }
            let start = resume == nil ? "training" : "resuming at step \(session.trainer.step):"
            printError("\(start) \(options.configuration.model.rawValue) (\(options.configuration.posterior.rawValue) "
                + "posterior, \(options.configuration.estimator.rawValue) gradient, k = \(options.configuration.latent), "
                + "\(session.model.parameterCount) parameters) on "
                + "\(session.dataset.train.count) images, batch \(options.batch)"
                + (session.ranks > 1 ? " over \(session.ranks) ranks, " : ", ") + "\(options.threads) thread(s) "
                + "(\(session.trainer.parallelism.rawValue) parallelism), \(session.totalSteps) steps, "
                + "BLAS kernel \(BLASKernel.summary)")
            if mpi == nil, let warning = TrainingFlags.oversubscriptionWarning(threads: options.threads) {
                printError(warning)
            }
            if resume == nil, let note = flags.model.estimatorNote { printError(note) }
            if session.replacesPreviousRun { printError("note: replacing the previous run in \(options.out)") }
            if options.batch > session.dataset.train.count {
                printError("note: --batch \(options.batch) is more than the \(session.dataset.train.count) training "
                    + "images; every step takes all of them (one step per epoch)")
            }
            let bar = ProgressLine()
            let outcome = try session.run(progress: { p in
                bar.update(String(format: "epoch %d/%d  step %d/%d  NELBO %.2f  %.0f samples/s  ETA %@",
                                  p.epoch, p.epochs, p.step, p.totalSteps, p.runningNELBO, p.samplesPerSecond,
                                  formatDuration(p.etaSeconds)), final: p.step == p.totalSteps)
            }, shouldStop: { Interruption.requested })
            bar.finish()
            switch outcome {
            case let .interrupted(step):
                printError("\(TrainingError.interrupted(step: step, directory: options.out))")
                throw ExitCode(Interruption.exitStatus)
            case let .finished(final):
                printEpochTable(session.history)
                if session.trainer.skippedBatches > 0 {
                    print("skipped \(session.trainer.skippedBatches) non-finite batch(es) (--on-nan skip-batch)")
                }
                print(String(format: "final test NELBO %.2f (KL %.2f, Rec %.2f) on %d images; checkpoint in %@",
                             final.testNELBO, final.testKL, final.testRec, session.testCount, options.out))
            }
        }
    }
}

/// A rank other than 0 trains without printing; it stops where rank 0 stops, with the same status.
func runSilently(_ session: TrainingSession) throws {
    if case .interrupted = try session.run(shouldStop: { Interruption.requested }) {
        throw ExitCode(Interruption.requested ? Interruption.exitStatus : 128 + SIGTERM)
    }
}

/// The per-epoch table on stdout.
func printEpochTable(_ history: [EpochMetrics]) {
    print("|  epoch |   step | train NELBO | test NELBO |  test KL | test Rec |  samples/s |")
    print("|-------:|-------:|------------:|-----------:|---------:|---------:|-----------:|")
    for m in history {
        print(String(format: "| %6d | %6d | %11.2f | %10.2f | %8.2f | %8.2f | %10.0f |", m.epoch, m.step,
                     m.trainNELBO, m.testNELBO, m.testKL, m.testRec, m.samplesPerSecond))
    }
}

/// A progress line on stderr: redrawn in place on a terminal, one plain line every few seconds otherwise.
final class ProgressLine {
    let isTerminal = isatty(STDERR_FILENO) != 0
    var lastPlain = Date.distantPast
    var drawn = false

    func update(_ text: String, final: Bool) {
        if isTerminal {
            printError("\r\u{1B}[K" + text, terminator: "")
            drawn = true
        } else if final || Date().timeIntervalSince(lastPlain) >= 5 {
            lastPlain = Date()
            printError(text)
        }
    }

    func finish() {
        if drawn { printError("") }
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
}
