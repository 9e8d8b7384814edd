import ArgumentParser
import FaultlineCore
import FaultlineEngine
import FaultlineJournal
import Foundation

/// `--keep-runs` and `--keep-for`: how many finished runs the state directory keeps, and for how long.
struct RetentionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Keep the newest N finished runs in the state directory (their folders, reports and journal rows); older ones are removed. A run whose revert failed is kept until 'recover --forget'.",
                               valueName: "N"))
    var keepRuns: Int = Retention.defaultKeepRuns

    @Option(help: ArgumentHelp("Remove finished runs that ended longer ago than this: whole days (14d) or a duration (12h); 0 keeps them for any age.",
                               valueName: "age"))
    var keepFor: String = "14d"

    func validate() throws {
        guard keepRuns >= 1 else { throw ValidationError("--keep-runs must be at least 1 (the run that just ended is kept), got \(keepRuns)") }
        do { _ = try Retention.age(parsing: keepFor) } catch { throw ValidationError("--keep-for: \(error.message)") }
    }

    /// The bounds (`--keep-for 0`: no age bound); `validate()` has checked the age.
    var retention: Retention {
        let age: TimeSpan?
        do { age = try Retention.age(parsing: keepFor) } catch { age = Retention.defaultKeepFor }
        return Retention(keepRuns: keepRuns, keepFor: age)
    }

    /// Prunes the state directory after a command's work; a failure is a warning, never the command's result.
    func prune(_ journal: Journal, log: EventLog) {
        do {
            let removed = try RunSession.prune(journal, retention: retention)
            if !removed.isEmpty {
                log.log(.note(.debug, .journal, "removed \(removed.count) finished run(s) beyond --keep-runs \(keepRuns) / --keep-for \(keepFor)"))
            }
        } catch {
            log.log(.note(.warning, .journal, "cannot remove old runs from the state directory: \(error)"))
        }
    }
}
