-- Verified identity: one visitor per site and signed-in user (the site's own user id).
CREATE UNIQUE INDEX visitors_external_id ON visitors(site_id, external_id)
    WHERE external_id IS NOT NULL;
