"""The local stack: emulators, the three functions and a scheduler stand-in on this machine.

Installed as the package `tunedrop_local` so that `tunedrop local up|down` and `tunedrop demo` work.
"""
