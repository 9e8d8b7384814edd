/// Parses plain decimal numbers only (`25`, `0.5`, `1e3`): no hex, no `inf` or `nan`.
func decimalNumber(_ text: Substring) -> Double? {
    guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }),
          let value = Double(text), value.isFinite else { return nil }
    return value
}

func decimalNumber(_ text: String) -> Double? { decimalNumber(Substring(text)) }
