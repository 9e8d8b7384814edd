import CFaultlineShims

/// Makes this process the one that adopts its orphaned descendants (PR_SET_CHILD_SUBREAPER), as process 1 does.
public enum Subreaper {
    /// Marks this process a child subreaper; false when the kernel refused.
    @discardableResult
    public static func become() -> Bool { faultline_set_child_subreaper() == 0 }
}
