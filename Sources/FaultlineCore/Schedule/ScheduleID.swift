/// Cron schedule ids: `s` and a run-id-like token, such as `s4c2e9a10`. The `s` keeps them apart from run ids (hex
/// digits), which one-shot schedules use as theirs. A controller picks one and sends it to every agent of a fleet,
/// so the schedule has the same id everywhere.
public enum ScheduleID {
    /// `s` followed by 1 to 15 lowercase letters and digits.
    public static func isValid(_ id: String) -> Bool {
        id.count >= 2 && id.hasPrefix("s") && RunID.isValid(id)
    }

    /// A fresh random id: `s` and 8 hex digits.
    public static func random() -> String { "s" + RunID.random() }
}
