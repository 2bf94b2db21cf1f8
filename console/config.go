package console

// configRoutes are the pages for lists, routes and policy.
var configRoutes []route
