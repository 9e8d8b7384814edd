/// Run ids: short lowercase tokens that fit iptables chain names (`FAULTLINE-<id>-<n>`, at most 28 characters).
public enum RunID {
    public static func isValid(_ id: String) -> Bool {
        (1...16).contains(id.count) && id.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) }
    }

    /// A stable id for showing a plan: FNV-1a of the scenario text, 8 hex digits.
    public static func derived(from text: String) -> String {
        var hash: UInt32 = 0x811c_9dc5
        for byte in text.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// A fresh random id for a run.
    public static func random() -> String {
        let hex = String(UInt32.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
