import TYDFSCore
