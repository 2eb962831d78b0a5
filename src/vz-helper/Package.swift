// swift-tools-version:5.7
// PaddockVZ: runs one Paddock sandbox VM with Apple's Virtualization.framework (macOS 13+).
// Build on macOS: swift build -c release, then sign with the virtualization entitlement:
//   codesign --force --entitlements ../../build/entitlements.mac.plist -s - .build/release/PaddockVZ
import PackageDescription

let package = Package(
  name: "PaddockVZ",
  platforms: [.macOS(.v13)],
  targets: [
    .executableTarget(
      name: "PaddockVZ",
      path: "Sources/PaddockVZ",
      linkerSettings: [.linkedFramework("Virtualization")]
    )
  ]
)
