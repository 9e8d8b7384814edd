import FaultlineCLI

await Faultline.runMain()
