package console

// rightsRoutes are the pages for privacy, the consortium and the archive.
var rightsRoutes []route
