-- The photos and files a message carries, as the JSON list its readers get
-- ([{"id", "name", "type", "size"}], NULL for none): copied from the attachments rows
-- when the message is written (those fields never change), so reading a thread needs
-- no join.
ALTER TABLE messages ADD COLUMN attachments TEXT;
