import FaultlineCLI

Faultline.prepareProcess()
await Faultline.runMain()
